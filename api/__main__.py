"""Start the API under uvicorn: ``python -m api`` (API_HOST, API_PORT, API_WORKERS, API_LOG_LEVEL)."""

from __future__ import annotations

import uvicorn

from api.settings import ApiSettings


def main() -> None:
    settings = ApiSettings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
