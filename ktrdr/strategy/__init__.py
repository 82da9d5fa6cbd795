"""Strategy documents: the YAML schema, loading with precise errors, and the bundled strategies."""
