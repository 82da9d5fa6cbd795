"""Operations: the persistent record of every training and backtest (tables, store, migrations, lifecycle).

Only the backend imports this package; it needs SQLAlchemy and an async driver, never numpy/pandas/torch.
"""
