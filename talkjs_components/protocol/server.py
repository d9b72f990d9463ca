"""The server side of one connection, as a state machine without I/O.

The I/O layer feeds received text frames, the close of the connection and
the time into :class:`ServerProtocol`. In return it gets frames to send, a
close to perform, and events to handle: a hello to authenticate, and requests
to run against the ChatService. Every method takes the time it
needs as an argument, in seconds of a monotonic clock.

States::

    AWAITING_HELLO --hello--> AUTHENTICATING --accept()--> OPEN --shutdown()--> CLOSING
          |                         |                        |                     |
          +------ error, timeout, reject(), close(), connection_closed() -----> CLOSED
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from pydantic import ValidationError

from ..errors import AuthError, ChatError, InvalidInput, NotFound, PermissionDenied
from ..models import ChatEvent, PresenceChanged, User
from .close_codes import Close, CloseCode
from .codec import (
    EventFrameEncoder,
    RequestFrame,
    decode_client_frame,
    encode_frame,
    encode_result,
)
from .errors import ErrorCode, InvalidRequest, InvalidState, ProtocolError, error_kind
from .frames import (
    ErrorFrame,
    Hello,
    Ping,
    Pong,
    ResumeStatus,
    Welcome,
    WelcomeLimits,
    WireCredentials,
)
from .limits import SUPPORTED_VERSIONS, ServerLimits
from .requests import REQUEST_TYPES, Request, result_adapter

__all__ = ["HelloReceived", "RequestReceived", "ServerEvent", "ServerProtocol", "ServerState"]

logger = logging.getLogger("talkjs_components.protocol")

# Errors that reject the hello itself: connecting again with the same hello fails again.
_HELLO_REJECTIONS = (AuthError, PermissionDenied, NotFound, InvalidInput)


class ServerState(Enum):
    """Stage of a server connection."""

    AWAITING_HELLO = "awaiting_hello"
    AUTHENTICATING = "authenticating"
    """The hello arrived; the I/O layer checks it and calls accept() or reject()."""

    OPEN = "open"
    CLOSING = "closing"
    """Shutting down: responding to the requests in flight, rejecting new ones."""

    CLOSED = "closed"


@dataclass(frozen=True)
class HelloReceived:
    """A valid hello: authenticate it, then call ``accept()`` or ``reject()``.

    ``user`` contains the fields to write before connecting (``None`` connects
    an existing user). ``resume_after`` is the last event ``seq`` the client
    saw, or ``None`` for a fresh start.
    """

    version: int
    """The protocol version chosen: the newest one both sides speak."""

    app_id: str
    user_id: str
    credentials: WireCredentials
    user: User | None
    resume_after: int | None


@dataclass(frozen=True)
class RequestReceived:
    """A valid request: run it, then call ``send_result()`` or ``send_error()`` with its id."""

    request_id: str
    request: Request


ServerEvent = HelloReceived | RequestReceived
"""Anything the server protocol hands to the I/O layer to handle."""


class ServerProtocol:
    """The server side of one websocket connection.

    Args:
        now: The time the connection was opened, in monotonic seconds.
        limits: The limits to enforce and announce; the defaults when omitted.
        supported_versions: Protocol versions to accept in a hello.
        event_encoder: The encoder of event frames. Connections of one
            endpoint share one, so that a fan-out encodes each event once;
            a new one when omitted.

    After each call, the I/O layer sends :meth:`frames_to_send` in order,
    then performs :meth:`close_to_send` if there is one, handles
    :meth:`events_received`, and sleeps until :meth:`next_deadline`, where it
    calls :meth:`handle_timer`. The object is not thread-safe; use it from
    one task.
    """

    def __init__(
        self,
        now: float,
        limits: ServerLimits | None = None,
        *,
        supported_versions: Sequence[int] = SUPPORTED_VERSIONS,
        event_encoder: EventFrameEncoder | None = None,
    ) -> None:
        self._limits = limits or ServerLimits()
        self._event_encoder = event_encoder or EventFrameEncoder()
        self._supported_versions = tuple(supported_versions)
        self._state = ServerState.AWAITING_HELLO
        self._opened_at = now
        self._last_received = now
        self._ping_sent = False
        self._hello: Hello | None = None
        self._version: int | None = None
        self._last_event_seq = -1
        # Request id -> request type, for the requests without a response from the I/O layer.
        self._in_flight: dict[str, str] = {}
        self._events: list[ServerEvent] = []
        self._frames: list[str] = []
        self._close: Close | None = None

    # -- state ------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        """The connection's stage."""
        return self._state

    @property
    def limits(self) -> ServerLimits:
        """The limits this connection enforces."""
        return self._limits

    @property
    def user_id(self) -> str | None:
        """The user id of the hello, once one arrived."""
        return self._hello.user_id if self._hello is not None else None

    @property
    def in_flight(self) -> int:
        """Number of requests handed to the I/O layer and without a response yet."""
        return len(self._in_flight)

    # -- output -------------------------------------------------------------------

    def events_received(self) -> list[ServerEvent]:
        """Return the hellos and requests to handle since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def frames_to_send(self) -> list[str]:
        """Return the text frames to send since the last call, in order."""
        frames, self._frames = self._frames, []
        return frames

    def close_to_send(self) -> Close | None:
        """Return the close to perform after sending the frames; returned once."""
        close, self._close = self._close, None
        return close

    # -- input ------------------------------------------------------------------------

    def receive_text(self, text: str, now: float) -> None:
        """Handle a received text frame; frames after the close are ignored."""
        if self._state is ServerState.CLOSED:
            return
        self._last_received = now
        self._ping_sent = False
        try:
            frame = decode_client_frame(
                text,
                max_bytes=self._limits.max_frame_bytes,
                supported_versions=self._supported_versions,
            )
        except ProtocolError as error:
            self._fail(error)
            return
        except InvalidRequest as error:
            self._receive_invalid_request(error)
            return

        if self._state is ServerState.AWAITING_HELLO:
            self._receive_first_frame(frame)
        elif self._state is ServerState.AUTHENTICATING:
            self._fail(
                ProtocolError(
                    f"{_frame_type(frame)} frame arrived before the welcome: "
                    "wait for the welcome before sending other frames"
                )
            )
        elif isinstance(frame, Hello):
            self._fail(ProtocolError("hello frame arrived twice: send it once, as the first frame"))
        elif isinstance(frame, Ping):
            self._frames.append(encode_frame(Pong()))
        elif isinstance(frame, RequestFrame):
            self._receive_request(frame)

    def receive_bytes(self, data: bytes, now: float) -> None:
        """Handle a received binary frame, which the protocol does not allow."""
        if self._state is ServerState.CLOSED:
            return
        self._last_received = now
        self._fail(
            ProtocolError(f"binary frame of {len(data)} bytes received: send JSON in text frames")
        )

    def connection_closed(self) -> None:
        """Record that the connection closed; responses to requests in flight are dropped."""
        self._set_closed()

    def next_deadline(self) -> float | None:
        """Return when :meth:`handle_timer` must run next, or ``None`` when closed."""
        if self._state in (ServerState.AWAITING_HELLO, ServerState.AUTHENTICATING):
            return self._opened_at + self._limits.handshake_timeout
        if self._state is ServerState.CLOSED:
            return None
        if self._ping_sent:
            return self._last_received + self._limits.idle_timeout
        return self._last_received + self._limits.heartbeat_interval

    def handle_timer(self, now: float) -> None:
        """Send a ping, or close a connection that timed out; early calls do nothing."""
        limits = self._limits
        if self._state in (ServerState.AWAITING_HELLO, ServerState.AUTHENTICATING):
            if now >= self._opened_at + limits.handshake_timeout:
                self._send_error_and_close(
                    ChatError(
                        f"the handshake did not complete within {limits.handshake_timeout:g} s "
                        "(handshake_timeout): send the hello as the first frame",
                        code=ErrorCode.HANDSHAKE_TIMEOUT,
                    ),
                    CloseCode.IDLE_TIMEOUT,
                )
        elif self._state is not ServerState.CLOSED:
            if now >= self._last_received + limits.idle_timeout:
                self._send_error_and_close(
                    ChatError(
                        f"no frame arrived from the client for {limits.idle_timeout:g} s "
                        "(idle_timeout): respond to each ping with a pong",
                        code=ErrorCode.IDLE_TIMEOUT,
                    ),
                    CloseCode.IDLE_TIMEOUT,
                )
            elif not self._ping_sent and now >= self._last_received + limits.heartbeat_interval:
                self._frames.append(encode_frame(Ping()))
                self._ping_sent = True

    # -- decisions of the I/O layer ----------------------------------------------------

    def accept(self, user: User, *, latest_seq: int, resumed: bool = False) -> None:
        """Send the welcome; events may be sent from now on.

        Args:
            user: The stored user, after the hello's user fields were written.
            latest_seq: The app's newest event ``seq`` now (0 when the log is
                empty): the position the connection starts from.
            resumed: Whether every event after the hello's ``resume_after`` is
                still available and will be sent next. ``False`` for a hello
                with ``resume_after`` makes the client reload (a gap).

        Does nothing when the connection closed meanwhile.

        Raises:
            InvalidState: No hello is waiting for a decision.
            InvalidInput: ``latest_seq`` is negative, or ``resumed`` is true
                for a hello without ``resume_after`` or with one above
                ``latest_seq``.
        """
        if self._state is ServerState.CLOSED:
            return
        hello, version = self._require_authenticating("accept")
        if isinstance(latest_seq, bool) or not isinstance(latest_seq, int) or latest_seq < 0:
            raise InvalidInput(f"latest_seq must be an integer >= 0, got {latest_seq!r}")

        if hello.resume_after is None:
            if resumed:
                raise InvalidInput("resumed=True, but the hello did not ask to resume")
            resume = ResumeStatus.FRESH
        elif resumed:
            if hello.resume_after > latest_seq:
                raise InvalidInput(
                    f"resumed=True, but the hello's resume_after {hello.resume_after} is above "
                    f"latest_seq {latest_seq}: pass resumed=False so that the client reloads"
                )
            resume = ResumeStatus.RESUMED
        else:
            resume = ResumeStatus.GAP

        # The server sends events after the client's position: after the
        # resume point when resuming, after the newest event otherwise.
        if resume is ResumeStatus.RESUMED:
            assert hello.resume_after is not None
            self._last_event_seq = hello.resume_after
        else:
            self._last_event_seq = latest_seq

        limits = self._limits
        welcome = Welcome(
            version=version,
            user=user,
            limits=WelcomeLimits(
                max_frame_bytes=limits.max_frame_bytes,
                heartbeat_interval=limits.heartbeat_interval,
                idle_timeout=limits.idle_timeout,
                max_in_flight_requests=limits.max_in_flight_requests,
            ),
            seq=latest_seq,
            resume=resume,
        )
        self._frames.append(encode_frame(welcome))
        self._state = ServerState.OPEN
        logger.debug("connection of user %r open (resume %s)", hello.user_id, resume.value)

    def reject(self, error: Exception) -> None:
        """Refuse the hello: send an error frame, then close.

        An ``AuthError``, ``PermissionDenied``, ``NotFound`` or ``InvalidInput``
        closes with ``AUTHENTICATION_FAILED``; any other error closes with
        ``INTERNAL_ERROR``, so the client tries again. A ``ChatError`` travels
        with its code and message. Any other exception becomes a generic
        ``internal_error`` message, so log it in the I/O layer. Does nothing
        when the connection closed meanwhile.

        Raises:
            InvalidState: No hello is waiting for a decision.
        """
        if self._state is ServerState.CLOSED:
            return
        self._require_authenticating("reject")
        if isinstance(error, _HELLO_REJECTIONS):
            code = CloseCode.AUTHENTICATION_FAILED
        else:
            code = CloseCode.INTERNAL_ERROR
        self._send_error_and_close(error, code)

    def send_result(self, request_id: str, result: object) -> None:
        """Respond to a request with its result, of the request's ``result_type``.

        Does nothing when the connection is closed.

        Raises:
            InvalidState: No request with this id waits for a response.
            TypeError: ``result`` is not of the request's result type.
        """
        if self._state is ServerState.CLOSED:
            return
        request_type = self._require_in_flight(request_id)
        adapter = result_adapter(request_type)
        try:
            checked = adapter.validate_python(result)
        except ValidationError:
            expected = REQUEST_TYPES[request_type].result_type
            raise TypeError(
                f"result of the {request_type} request {request_id!r} must be "
                f"{getattr(expected, '__name__', expected)}, got {type(result).__name__}"
            ) from None
        del self._in_flight[request_id]
        self._frames.append(
            encode_result(request_id, adapter.dump_python(checked, mode="json", by_alias=True))
        )
        self._close_if_drained()

    def send_error(self, request_id: str, error: Exception) -> None:
        """Respond to a request with an error.

        A ``ChatError`` travels with its code and message. Any other exception
        becomes ``internal_error`` with a message that names only the request,
        because exception details may contain data of other users. Log the
        exception in the I/O layer. Does nothing when the connection is closed.

        Raises:
            InvalidState: No request with this id waits for a response.
        """
        if self._state is ServerState.CLOSED:
            return
        request_type = self._require_in_flight(request_id)
        del self._in_flight[request_id]
        self._frames.append(encode_frame(_error_frame(error, request_id, request_type)))
        self._close_if_drained()

    def send_event(self, event: ChatEvent) -> bool:
        """Send a chat event of the user; return whether it was sent.

        A stored event (``event.seq`` set) at or below the last ``seq`` sent,
        or below the resume point, is skipped. So the overlap of a replay and
        the live events does no harm when the I/O layer sends the replay
        first. Typing and presence events (``seq`` is ``None``) are always
        sent, except to a connection of protocol version 1, whose clients
        cannot read the ``presence_changed`` of version 2 and get none.
        Nothing is sent once the connection is closed.

        Raises:
            InvalidState: The welcome was not sent yet; hold events until ``accept()``.
        """
        if self._state is ServerState.CLOSED:
            return False
        if self._state in (ServerState.AWAITING_HELLO, ServerState.AUTHENTICATING):
            raise InvalidState(
                f"cannot send a {event.type} event in state {self._state.value}: "
                "call accept() first"
            )
        if self._version == 1 and isinstance(event, PresenceChanged):
            return False
        if event.seq is not None:
            if event.seq <= self._last_event_seq:
                return False
            self._last_event_seq = event.seq
        self._frames.append(self._event_encoder.encode(event))
        return True

    def shutdown(self) -> None:
        """Close with ``GOING_AWAY`` once every request in flight has a response.

        New requests are rejected with ``server_shutting_down`` meanwhile, and
        the client sends them again after reconnecting. Calling it again, or
        after the close, does nothing.
        """
        if self._state in (ServerState.AWAITING_HELLO, ServerState.AUTHENTICATING):
            self._set_close(CloseCode.GOING_AWAY, ErrorCode.SERVER_SHUTTING_DOWN)
        elif self._state is ServerState.OPEN:
            self._state = ServerState.CLOSING
            self._close_if_drained()

    def close(self, code: CloseCode, error: ChatError | None = None) -> None:
        """Close now with ``code``, after an error frame for ``error`` when one is given.

        For example ``close(CloseCode.AUTHENTICATION_FAILED, AuthError(...))``
        when the user's token expired and no new one came. Responses to requests
        in flight are dropped. Does nothing when already closed.
        """
        if self._state is ServerState.CLOSED:
            return
        if error is not None:
            self._send_error_and_close(error, code)
        else:
            self._set_close(code, code.name.lower())

    # -- helpers ----------------------------------------------------------------------------

    def _receive_first_frame(self, frame: Hello | Ping | Pong | RequestFrame) -> None:
        if not isinstance(frame, Hello):
            self._fail(
                ProtocolError(
                    f"the first frame must be a hello frame, got a {_frame_type(frame)} frame: "
                    "send hello and wait for the welcome before sending requests"
                )
            )
            return
        # The codec rejected hellos without a common version.
        version = max(set(frame.versions) & set(self._supported_versions))
        self._hello, self._version = frame, version
        self._state = ServerState.AUTHENTICATING
        self._events.append(
            HelloReceived(
                version=version,
                app_id=frame.app_id,
                user_id=frame.user_id,
                credentials=frame.credentials,
                user=frame.user,
                resume_after=frame.resume_after,
            )
        )

    def _receive_request(self, frame: RequestFrame) -> None:
        request_type = frame.request.type
        if not self._check_new_request_id(frame.id):
            return
        if self._state is ServerState.CLOSING:
            self._send_shutting_down(frame.id, request_type)
        elif len(self._in_flight) >= self._limits.max_in_flight_requests:
            self._frames.append(
                encode_frame(
                    _error_frame(
                        ChatError(
                            f"request {frame.id!r} rejected: {len(self._in_flight)} requests "
                            f"are without a response, and the limit is "
                            f"{self._limits.max_in_flight_requests} (max_in_flight_requests); "
                            "wait for responses before sending more",
                            code=ErrorCode.TOO_MANY_REQUESTS,
                        ),
                        frame.id,
                        request_type,
                    )
                )
            )
        else:
            self._in_flight[frame.id] = request_type
            self._events.append(RequestReceived(request_id=frame.id, request=frame.request))

    def _receive_invalid_request(self, error: InvalidRequest) -> None:
        if self._state in (ServerState.AWAITING_HELLO, ServerState.AUTHENTICATING):
            self._fail(
                ProtocolError(
                    f"{error.request_type} frame arrived before the welcome: "
                    "send hello and wait for the welcome before sending requests"
                )
            )
        elif self._check_new_request_id(error.request_id):
            if self._state is ServerState.CLOSING:
                self._send_shutting_down(error.request_id, error.request_type)
            else:
                self._frames.append(
                    encode_frame(_error_frame(error, error.request_id, error.request_type))
                )

    def _check_new_request_id(self, request_id: str) -> bool:
        """Fail the connection when ``request_id`` belongs to a request without a response."""
        if request_id in self._in_flight:
            self._fail(
                ProtocolError(
                    f"request id {request_id!r} is already used by a request without a response: "
                    "use a new id for each request"
                )
            )
            return False
        return True

    def _send_shutting_down(self, request_id: str, request_type: str) -> None:
        error = ChatError(
            f"the server is shutting down and did not run request {request_id!r}: "
            "send it again after reconnecting",
            code=ErrorCode.SERVER_SHUTTING_DOWN,
        )
        self._frames.append(encode_frame(_error_frame(error, request_id, request_type)))

    def _require_authenticating(self, method: str) -> tuple[Hello, int]:
        if (
            self._state is not ServerState.AUTHENTICATING
            or self._hello is None
            or self._version is None
        ):
            raise InvalidState(
                f"cannot call {method}() in state {self._state.value}: "
                "it responds to a HelloReceived event"
            )
        return self._hello, self._version

    def _require_in_flight(self, request_id: str) -> str:
        request_type = self._in_flight.get(request_id)
        if request_type is None:
            raise InvalidState(
                f"no request with id {request_id!r} waits for a response: respond to each "
                "RequestReceived once"
            )
        return request_type

    def _close_if_drained(self) -> None:
        if self._state is ServerState.CLOSING and not self._in_flight:
            self._set_close(CloseCode.GOING_AWAY, ErrorCode.SERVER_SHUTTING_DOWN)

    def _fail(self, error: ProtocolError) -> None:
        self._send_error_and_close(error, error.close_code)

    def _send_error_and_close(self, error: Exception, code: CloseCode) -> None:
        frame = _error_frame(error, None, None)
        self._frames.append(encode_frame(frame))
        self._set_close(code, frame.code)

    def _set_close(self, code: CloseCode, reason: str) -> None:
        if self._state is ServerState.CLOSED:
            return
        logger.debug("closing connection of user %r: %d %s", self.user_id, code, reason)
        self._close = Close(code, reason)
        self._set_closed()

    def _set_closed(self) -> None:
        self._state = ServerState.CLOSED
        self._in_flight.clear()


def _error_frame(error: Exception, request_id: str | None, request_type: str | None) -> ErrorFrame:
    if isinstance(error, ChatError):
        return ErrorFrame(
            id=request_id, code=error.code, kind=error_kind(error), message=error.message
        )
    if request_type is not None:
        message = f"the server failed to run the {request_type} request {request_id!r}"
    else:
        message = "the server failed to handle the hello"
    return ErrorFrame(
        id=request_id,
        code=ErrorCode.INTERNAL_ERROR,
        kind=ChatError.code,
        message=f"{message}; the server log has the details",
    )


def _frame_type(frame: Hello | Ping | Pong | RequestFrame) -> str:
    if isinstance(frame, RequestFrame):
        return frame.request.type
    return frame.type
