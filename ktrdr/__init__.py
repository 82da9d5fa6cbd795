"""ktrdr: neuro-fuzzy trading research system."""

__version__ = "0.1.0"
