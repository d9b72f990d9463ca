"""The server's ASGI app: REST API v1 routes, the realtime endpoint, health and OpenAPI.

It does not import ReactPy. It serves the chat backend of its apps to REST
clients, and to sessions over the realtime websocket protocol.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..broker.urls import broker_from_url
from ..errors import ChatError
from .body_limit import BodySizeLimit
from .config import ServerConfig
from .errors import from_chat_error, handle_http_exception, internal_error
from .hosting import AppHost
from .openapi import HealthBody, build_openapi
from .rate_limit import RateLimiter
from .realtime import RealtimeEndpoint, RealtimeSettings
from .routes import OPERATIONS
from .routing import RestServer

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(config: ServerConfig, *, realtime: RealtimeSettings | None = None) -> Starlette:
    """Return the server's ASGI app for ``config``.

    The app's lifespan starts the broker and every configured app's chat
    service on the database, and closes them at shutdown, after closing the
    realtime connections. ``app.state.host`` is the
    :class:`~talkjs_components.server.hosting.AppHost`, through which tests
    and other endpoints reach each app's ``ChatService``, and
    ``app.state.realtime`` is the
    :class:`~talkjs_components.server.realtime.RealtimeEndpoint`.

    Args:
        config: The apps, the database, the broker, the REST limits and the
            realtime settings.
        realtime: Settings of the realtime endpoint that replace
            ``config.realtime``.

    Raises:
        InvalidInput: the configuration has no app, an app twice, or a
            database or broker URL that is not supported.
        ModuleNotFoundError: the database or broker URL needs a package that
            is not installed (asyncpg for PostgreSQL, redis for Redis).
    """
    broker = broker_from_url(config.broker, prefix=config.broker_prefix)
    host = AppHost(config.apps, config.database, broker)
    rest = RestServer(host, RateLimiter(config.settings.rate_limit))
    endpoint = RealtimeEndpoint(host, realtime or config.realtime)
    document = build_openapi(OPERATIONS, version=__version__)

    async def health(request: Request) -> Response:
        try:
            await host.check_health()
        except ChatError as exc:
            return from_chat_error(exc).to_response()
        except Exception as exc:
            return internal_error(exc, request)
        return JSONResponse(HealthBody().model_dump(mode="json"))

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *rest.routes(OPERATIONS),
        # BodySizeLimit passes websocket scopes through; the protocol limits frame sizes.
        endpoint.route(),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await host.start()
        try:
            yield
        finally:
            # Does nothing under DrainingServer, which drained the endpoint already.
            await endpoint.shutdown()
            await host.close()
            logger.info("server stopped; closed %d apps", len(host.app_ids))

    app = Starlette(
        routes=routes,
        middleware=[Middleware(BodySizeLimit, max_body_bytes=config.settings.max_body_bytes)],
        exception_handlers={HTTPException: handle_http_exception},
        lifespan=lifespan,
    )
    app.state.host = host
    app.state.realtime = endpoint
    return app
