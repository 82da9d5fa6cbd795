"""Fuzzy logic: vectorised membership functions and the fuzzifier (indicator columns → memberships).

Importing this package loads numpy; the strategy schema describes fuzzy sets without it.
"""

from ktrdr.fuzzy.fuzzifier import fuzzify, membership_column
from ktrdr.fuzzy.membership import MEMBERSHIP_FUNCTIONS, gaussian, membership, trapezoidal, triangular

__all__ = [
    "MEMBERSHIP_FUNCTIONS",
    "fuzzify",
    "gaussian",
    "membership",
    "membership_column",
    "trapezoidal",
    "triangular",
]
