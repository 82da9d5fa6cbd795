"""The baseline for time-to-healthy: the smallest FastAPI app with one health route."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
