"""The standalone chat server: a Starlette app with the REST API v1, run by uvicorn.

:func:`create_app` builds the ASGI app from a :class:`ServerConfig`, which
:func:`load_server_config` reads from a config file and the environment. The
``talkjs-components serve`` command does both and runs uvicorn.
"""

from __future__ import annotations

from .app import create_app
from .config import ConfigError, ServerConfig, ServerSettings, add_app, load_server_config
from .hosting import AppHost, HostedApp
from .rate_limit import RateLimit

__all__ = [
    "AppHost",
    "ConfigError",
    "HostedApp",
    "RateLimit",
    "ServerConfig",
    "ServerSettings",
    "add_app",
    "create_app",
    "load_server_config",
]
