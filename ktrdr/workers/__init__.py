"""Workers: the worker base app and the backend side of the worker protocol (registry, dispatch)."""
