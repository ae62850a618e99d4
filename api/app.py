"""The application factory: ``create_app()`` builds the FastAPI app for `clarion serve`
(embedded) and `clarion api` (scaled, stateless, any number of replicas)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from api import errors
from api.auth import require_token
from config.settings import Settings, get_settings
from config.version import __version__


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over ``settings`` (default: the environment's). Holds no state of its own
    beyond the settings: every answer comes from the database."""
    app = FastAPI(
        title="Clarion",
        version=__version__,
        description="Bulk SMS, MMS and voice campaigns through ClickSend.",
    )
    app.state.settings = settings or get_settings()
    errors.install(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: answers without a token."""
        return {"status": "ok", "version": __version__}

    # Everything under /api/v1 needs a bearer token; routers add themselves here.
    protected = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
    from api.routes import ROUTERS

    for router in ROUTERS:
        protected.include_router(router)
    app.include_router(protected)
    from api import webhooks

    app.include_router(webhooks.router)  # authenticated by the secret in its URL
    from api import dashboard, metrics

    metrics.install(app)  # /metrics, behind the same token
    dashboard.install(app)  # /ui: pages and their login
    return app
