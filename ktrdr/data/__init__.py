"""OHLCV data: validated names, the CSV store, CSV import, dataset catalog and the sample data.

This package's ``__init__`` imports nothing heavy. ``names``, ``rules``, ``catalog``, ``csv_import`` and
``sample.install_sample_data`` are stdlib-only (the backend uses them); ``store`` and
``sample.generate_ohlcv`` need numpy/pandas (workers).
"""
