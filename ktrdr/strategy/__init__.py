"""Strategy documents: the YAML schema, loading with precise errors, and the bundled strategies.

No numpy anywhere: the backend validates and lists strategies.
"""
