"""Choose a broker implementation from a URL.

=============================================  ==============================
URL                                            Broker
=============================================  ==============================
empty, ``None`` or ``memory://``               ``MemoryBroker`` (one process)
``redis://[user:password@]host:6379/0``        ``RedisBroker``
``rediss://...``                               ``RedisBroker`` over TLS
=============================================  ==============================
"""

from __future__ import annotations

import re

from ..errors import InvalidInput
from . import Broker
from .memory import MemoryBroker

__all__ = ["broker_from_url"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

_REDIS_SCHEMES = ("redis", "rediss")


def broker_from_url(url: str | None, *, prefix: str = "talkjs") -> Broker:
    """Create the broker that ``url`` names; the caller starts it.

    ``prefix`` starts every Redis channel and key name, so deployments that
    share a Redis server must pass different ones. The memory broker ignores it.

    Raises:
        InvalidInput: the URL has another scheme, or no scheme; the message
            names the value and the accepted schemes. Also an invalid
            ``prefix`` for a Redis URL.
        ModuleNotFoundError: a Redis URL, without redis-py installed.
    """
    if url is None or not url.strip():
        return MemoryBroker()
    match = _SCHEME.match(url)
    scheme = match[1].lower() if match is not None else None
    if scheme in _REDIS_SCHEMES:
        return _redis_broker(url, prefix)
    if scheme == "memory" and match is not None:
        if url[match.end() :]:
            raise InvalidInput(
                f"broker URL {_shorten(url)} is invalid: the in-process broker takes no "
                "address, so write memory:// alone"
            )
        return MemoryBroker()
    raise InvalidInput(
        f"broker URL {_shorten(url)} is not supported: use memory:// (or leave it empty) "
        "for the in-process broker, or redis://host:6379/0 or rediss://host:6380/0 for Redis"
    )


def _redis_broker(url: str, prefix: str) -> Broker:
    # Imported here so that installations without Redis need not install
    # redis-py (the "redis" extra).
    try:
        from .redis import RedisBroker
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"a Redis broker URL needs the redis package, which is not installed ({exc}): "
            "install talkjs-components[redis]"
        ) from exc
    return RedisBroker(url, prefix=prefix)


def _shorten(url: str) -> str:
    """Quote a URL for an error message, without a password and cut to 100 characters."""
    shown = re.sub(r"://([^/@:]*):[^/@]*@", r"://\1:***@", url)
    if len(shown) > 100:
        shown = shown[:100] + "..."
    return f"'{shown}'"
