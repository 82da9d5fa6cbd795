"""The backend's HTTP API (FastAPI): the app factory, the request guard, error mapping and the routes."""
