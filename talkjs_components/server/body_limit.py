"""ASGI middleware that rejects request bodies over a size limit with 413."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

__all__ = ["DRAIN_FACTOR", "BodySizeLimit", "BodyTooLarge"]

DRAIN_FACTOR = 8
"""How much of a rejected body is read and dropped, as a multiple of the limit.

An HTTP client sends its whole body before it reads the response, so a
server that responds and closes while the client is still sending makes the
client fail with a connection reset instead of seeing the 413. Up to this
multiple the body is drained first. A larger body gets the 413 at once and
the connection is closed.
"""


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body crosses the limit.

    The middleware responds with 413, so endpoints that catch broad
    exceptions must let it through.
    """


class BodySizeLimit:
    """Reject an HTTP request whose body is over ``max_body_bytes`` with 413.

    A ``Content-Length`` over the limit is rejected before the app runs. A
    body without one (chunked) is counted while the app reads it, and the
    read that crosses the limit raises :class:`BodyTooLarge`, which ends the
    request with 413 unless the app has already started its response. So no
    more than ``max_body_bytes`` plus one received chunk is ever buffered.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            drainable = declared <= DRAIN_FACTOR * self.max_body_bytes
            await self._reject(
                scope, receive, send, f"declares {declared} bytes", 0 if drainable else None
            )
            return

        received = 0
        more_body = True
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, more_body
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                more_body = bool(message.get("more_body", False))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if response_started:
                raise
            size = f"has more than {self.max_body_bytes} bytes"
            await self._reject(scope, receive, send, size, received if more_body else None)

    async def _reject(
        self, scope: Scope, receive: Receive, send: Send, size: str, drain_from: int | None
    ) -> None:
        if drain_from is not None:
            await _drain(receive, drain_from, DRAIN_FACTOR * self.max_body_bytes)
        response = error_response(
            413,
            "payload_too_large",
            f"the request body {size}, over the limit of {self.max_body_bytes} bytes: "
            "send fewer users or messages per request",
            # Whatever is left of the body must not be read as the next request.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


async def _drain(receive: Receive, received: int, cap: int) -> None:
    """Read and drop the rest of a body, until its end or until ``cap`` bytes were read."""
    while received <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
