"""The client side of the protocol, as a state machine without I/O.

One :class:`ClientProtocol` lives as long as a session and spans its
connections: requests, unacknowledged sends and the resume position survive a
reconnect. The I/O layer opens a websocket and calls
:meth:`ClientProtocol.connect`. It then feeds received text frames, the close
of the connection and the time into the object. In return it gets frames to
send, a close to perform, and events: the welcome, responses to requests,
chat events and disconnects.

States::

    DISCONNECTED --connect()--> CONNECTING --welcome--> OPEN
         ^                          |                    |
         +------- close received, timeout, bad frame ----+
    any state --close()--> CLOSED (final)
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from pydantic import ValidationError

from ..errors import ChatError, InvalidInput
from ..models import ChatEvent, User
from .close_codes import Close, CloseCode, ReconnectPolicy, reconnect_policy
from .codec import (
    check_frame_size,
    decode_server_frame,
    describe_validation_error,
    encode_frame,
    encode_request,
)
from .errors import ErrorCode, InvalidState, ProtocolError, error_from_wire
from .frames import (
    ErrorFrame,
    EventFrame,
    Hello,
    Ping,
    Pong,
    ResultFrame,
    ResumeStatus,
    Welcome,
    WelcomeLimits,
    WireCredentials,
)
from .limits import CLIENT_VERSIONS, DEFAULT_HANDSHAKE_TIMEOUT
from .requests import Request, SendMessage, result_adapter

__all__ = [
    "ClientEvent",
    "ClientProtocol",
    "ClientState",
    "Connected",
    "Disconnected",
    "EventReceived",
    "ReloadNeeded",
    "RequestFailed",
    "ResponseReceived",
]

logger = logging.getLogger("talkjs_components.protocol")


class ClientState(Enum):
    """Stage of a client."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    """The hello is sent; the welcome has not arrived."""

    OPEN = "open"
    CLOSED = "closed"
    """Closed for good by :meth:`ClientProtocol.close`."""


@dataclass(frozen=True)
class Connected:
    """The welcome arrived: the connection is open."""

    user: User
    """The stored user."""

    version: int
    limits: WelcomeLimits
    resume: ResumeStatus


@dataclass(frozen=True)
class ResponseReceived:
    """A request succeeded; ``result`` has the request's ``result_type``."""

    request_id: str
    request: Request
    result: object


@dataclass(frozen=True)
class RequestFailed:
    """A request failed: the server's error, a lost connection, or a frame over the limit."""

    request_id: str
    request: Request
    error: ChatError


@dataclass(frozen=True)
class EventReceived:
    """A chat event not seen before; stored events arrive in ``event.seq`` order."""

    event: ChatEvent


@dataclass(frozen=True)
class ReloadNeeded:
    """The server could not resume: events after ``resume_after`` up to ``seq`` are lost.

    Reload what the events would have updated (conversations, unreads, open
    message lists). Events after ``seq`` arrive as usual.
    """

    resume_after: int
    seq: int
    message: str


@dataclass(frozen=True)
class Disconnected:
    """A connection ended; ``policy`` states whether and how to connect again.

    ``code`` is the close code, 1006 when the connection dropped without one.
    ``error`` explains the end, from the server's error frame when it sent one.
    """

    code: int
    reason: str
    policy: ReconnectPolicy
    error: ChatError


ClientEvent = (
    Connected | ResponseReceived | RequestFailed | EventReceived | ReloadNeeded | Disconnected
)
"""Anything the client protocol reports to the I/O layer."""


@dataclass
class _Pending:
    request: Request
    sent: bool = False
    """Whether the request went out on the current connection."""


class ClientProtocol:
    """The client side of the protocol for one user's session.

    Args:
        app_id: The app to connect to.
        user_id: The user to connect as.
        last_seq: The last event ``seq`` seen, to resume from on the first
            connect; ``None`` starts fresh.
        supported_versions: Protocol versions to offer in the hello.
        handshake_timeout: Seconds to wait for the welcome after ``connect()``.
        key_prefix: Prefix of generated idempotency keys. The random default
            keeps keys of different sessions of the same user apart.
        resume: Whether a hello asks the server to replay the events after
            ``last_seq``. A client that replays through ``events_after``
            requests itself passes ``False``, so no event arrives twice.

    Requests made while disconnected wait, and go out after the next welcome
    in the order they were made, at most ``max_in_flight_requests`` at a
    time. When a connection ends, ``send_message`` requests without a response stay
    and are sent again with the same idempotency key, so a message is stored
    once. Other requests without a response fail with ``connection_lost``, because
    the server may have run them. The object is not thread-safe.
    """

    def __init__(
        self,
        app_id: str,
        user_id: str,
        *,
        last_seq: int | None = None,
        supported_versions: Sequence[int] = CLIENT_VERSIONS,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        key_prefix: str | None = None,
        resume: bool = True,
    ) -> None:
        self._app_id = app_id
        self._resume = resume
        self._user_id = user_id
        self._last_seq = last_seq
        self._supported_versions = tuple(supported_versions)
        self._handshake_timeout = handshake_timeout
        self._key_prefix = key_prefix if key_prefix is not None else secrets.token_hex(8)
        self._key_numbers = itertools.count(1)
        self._request_numbers = itertools.count(1)
        self._state = ClientState.DISCONNECTED
        self._limits: WelcomeLimits | None = None
        self._connected_at = 0.0
        self._last_received = 0.0
        self._resume_requested: int | None = None
        # Set once the server rejected a request for shutting down, because
        # it rejects every later one on this connection too.
        self._server_draining = False
        # The error frame without id that announces the server's close.
        self._close_error: ChatError | None = None
        self._pending: dict[str, _Pending] = {}
        self._events: list[ClientEvent] = []
        self._frames: list[str] = []
        self._close: Close | None = None

    # -- state ----------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The client's stage."""
        return self._state

    @property
    def last_seq(self) -> int | None:
        """The last event ``seq`` seen: the next hello resumes after it."""
        return self._last_seq

    @property
    def limits(self) -> WelcomeLimits | None:
        """The limits of the last welcome, or ``None`` before the first one."""
        return self._limits

    @property
    def unacknowledged_sends(self) -> list[tuple[str, SendMessage]]:
        """The ``send_message`` requests without a response yet, as (request id, request)."""
        return [
            (request_id, pending.request)
            for request_id, pending in self._pending.items()
            if isinstance(pending.request, SendMessage)
        ]

    @property
    def pending_requests(self) -> int:
        """Number of requests without a response, sent or waiting to be sent."""
        return len(self._pending)

    # -- output -----------------------------------------------------------------------

    def events_received(self) -> list[ClientEvent]:
        """Return the events since the last call, oldest first."""
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

    # -- commands -------------------------------------------------------------------------

    def connect(
        self,
        now: float,
        *,
        token: str | None = None,
        signature: str | None = None,
        user: User | None = None,
    ) -> None:
        """Start a connection on a freshly opened websocket by sending the hello.

        Args:
            now: The current time in monotonic seconds.
            token: A user token (JWT).
            signature: A legacy signature of the user id.
            user: Fields of the user to write first; only the fields set on
                the model are sent. ``None`` connects an existing user.

        Raises:
            InvalidState: The client is not disconnected.
            InvalidInput: ``user`` is another user, or a credential is too long.
        """
        if self._state is not ClientState.DISCONNECTED:
            raise InvalidState(
                f"cannot connect in state {self._state.value}: wait for Disconnected first"
            )
        try:
            hello = Hello(
                versions=list(self._supported_versions),
                app_id=self._app_id,
                user_id=self._user_id,
                credentials=WireCredentials(token=token, signature=signature),
                user=user,
                resume_after=self._last_seq if self._resume else None,
            )
        except ValidationError as exc:
            raise InvalidInput(describe_validation_error(exc, "hello")) from None
        self._frames.append(encode_frame(hello))
        self._state = ClientState.CONNECTING
        self._connected_at = self._last_received = now
        self._resume_requested = self._last_seq if self._resume else None
        self._server_draining = False
        self._close_error = None

    def request(self, request: Request) -> str:
        """Queue a request and return its id; the response arrives as an event with that id.

        Raises:
            InvalidState: The client is closed.
        """
        if self._state is ClientState.CLOSED:
            raise InvalidState(f"cannot send a {request.type} request: the client is closed")
        request_id = str(next(self._request_numbers))
        self._pending[request_id] = _Pending(request)
        self._flush()
        return request_id

    def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        custom: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Queue a ``send_message`` request, with a new idempotency key when none is given.

        Raises:
            InvalidInput: An argument breaks a limit of the request.
            InvalidState: The client is closed.
        """
        try:
            request = SendMessage(
                conversation_id=conversation_id,
                text=text,
                custom=dict(custom) if custom is not None else None,
                idempotency_key=idempotency_key or self.new_idempotency_key(),
            )
        except ValidationError as exc:
            raise InvalidInput(describe_validation_error(exc, "send_message")) from None
        return self.request(request)

    def new_idempotency_key(self) -> str:
        """Return an idempotency key not used before by this client."""
        return f"{self._key_prefix}-{next(self._key_numbers)}"

    def close(self) -> None:
        """Close for good: close the connection, and fail every request without a response.

        A ``send_message`` that was sent may have been stored anyway. Calling
        it again does nothing.
        """
        if self._state is ClientState.CLOSED:
            return
        connected = self._state in (ClientState.CONNECTING, ClientState.OPEN)
        self._state = ClientState.CLOSED
        pending, self._pending = self._pending, {}
        for request_id, entry in pending.items():
            stored = " The message may have been stored." if entry.sent else ""
            self._fail_request(
                request_id,
                entry.request,
                ChatError(
                    f"the client closed before request {request_id} ({entry.request.type}) "
                    f"got a response.{stored}",
                    code=ErrorCode.CONNECTION_CLOSED,
                ),
            )
        if connected:
            self._close = Close(CloseCode.NORMAL, "client closed")
            self._events.append(
                Disconnected(
                    code=CloseCode.NORMAL,
                    reason="client closed",
                    policy=ReconnectPolicy.STOP,
                    error=ChatError("the client closed", code=ErrorCode.CONNECTION_CLOSED),
                )
            )

    # -- input ------------------------------------------------------------------------------

    def receive_text(self, text: str, now: float) -> None:
        """Handle a received text frame; frames while disconnected are ignored."""
        if self._state not in (ClientState.CONNECTING, ClientState.OPEN):
            return
        self._last_received = now
        try:
            frame = decode_server_frame(text)
        except ProtocolError as error:
            self._fail(error)
            return

        if isinstance(frame, Ping):
            self._frames.append(encode_frame(Pong()))
        elif isinstance(frame, Pong):
            pass
        elif isinstance(frame, ErrorFrame) and frame.id is None:
            # The server explains the close that follows.
            self._close_error = error_from_wire(frame.code, frame.kind, frame.message)
        elif self._state is ClientState.CONNECTING:
            if isinstance(frame, Welcome):
                self._receive_welcome(frame)
            else:
                self._fail(ProtocolError(f"{frame.type} frame arrived before the welcome"))
        elif isinstance(frame, Welcome):
            self._fail(ProtocolError("welcome frame arrived on an open connection"))
        elif isinstance(frame, EventFrame):
            self._receive_event(frame)
        else:
            self._receive_response(frame)

    def connection_closed(self, code: int | None, reason: str = "") -> None:
        """Record that the websocket closed, with the close code received (``None``: none).

        Does nothing when the client already counts itself disconnected, for
        example after it decided to close.
        """
        if self._state not in (ClientState.CONNECTING, ClientState.OPEN):
            return
        close_code = CloseCode.ABNORMAL if code is None else code
        error = self._close_error
        if error is None:
            if code is None:
                message = "the connection dropped without a close frame"
            else:
                message = f"the server closed the connection with code {code}"
                if reason:
                    message += f" ({reason})"
            error = ChatError(message, code=ErrorCode.CONNECTION_LOST)
        self._disconnect(close_code, reason, error)

    def next_deadline(self) -> float | None:
        """Return when :meth:`handle_timer` must run next, or ``None`` when not connected."""
        if self._state is ClientState.CONNECTING:
            return self._connected_at + self._handshake_timeout
        if self._state is ClientState.OPEN and self._limits is not None:
            return self._last_received + self._limits.idle_timeout
        return None

    def handle_timer(self, now: float) -> None:
        """Close a connection whose welcome or frames stopped coming; early calls do nothing."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return
        if self._state is ClientState.CONNECTING:
            error = ChatError(
                f"no welcome arrived within {self._handshake_timeout:g} s of the hello",
                code=ErrorCode.HANDSHAKE_TIMEOUT,
            )
        else:
            assert self._limits is not None
            error = ChatError(
                f"no frame arrived from the server for {self._limits.idle_timeout:g} s",
                code=ErrorCode.IDLE_TIMEOUT,
            )
        self._close = Close(CloseCode.IDLE_TIMEOUT, error.code)
        self._disconnect(CloseCode.IDLE_TIMEOUT, error.code, error)

    # -- helpers ----------------------------------------------------------------------------------

    def _receive_welcome(self, welcome: Welcome) -> None:
        if welcome.version not in self._supported_versions:
            self._fail(
                ProtocolError(
                    f"the server chose protocol version {welcome.version}, which the client "
                    f"did not offer ({', '.join(map(str, self._supported_versions))})"
                )
            )
            return
        asked = self._resume_requested is not None
        if asked == (welcome.resume is ResumeStatus.FRESH):
            self._fail(
                ProtocolError(
                    f"the welcome has resume {welcome.resume.value!r}, but the hello "
                    f"{'asked' if asked else 'did not ask'} to resume"
                )
            )
            return

        self._state = ClientState.OPEN
        self._limits = welcome.limits
        self._events.append(
            Connected(
                user=welcome.user,
                version=welcome.version,
                limits=welcome.limits,
                resume=welcome.resume,
            )
        )
        if welcome.resume is ResumeStatus.GAP:
            assert self._resume_requested is not None
            self._events.append(
                ReloadNeeded(
                    resume_after=self._resume_requested,
                    seq=welcome.seq,
                    message=(
                        f"the server no longer has every event after seq "
                        f"{self._resume_requested}: reload conversations, unreads and "
                        "open message lists"
                    ),
                )
            )
        if welcome.resume is not ResumeStatus.RESUMED:
            self._last_seq = welcome.seq
        self._flush()

    def _receive_event(self, frame: EventFrame) -> None:
        seq = frame.event.seq
        if seq is not None:
            # A replay after a reconnect can repeat events seen before.
            if self._last_seq is not None and seq <= self._last_seq:
                return
            self._last_seq = seq
        self._events.append(EventReceived(event=frame.event))

    def _receive_response(self, frame: ResultFrame | ErrorFrame) -> None:
        assert frame.id is not None
        entry = self._pending.get(frame.id)
        if entry is None or not entry.sent:
            self._fail(ProtocolError(f"{frame.type} frame for unknown request id {frame.id!r}"))
            return

        if isinstance(frame, ErrorFrame) and frame.code == ErrorCode.SERVER_SHUTTING_DOWN:
            # The server did not run the request: send it after reconnecting.
            entry.sent = False
            self._server_draining = True
            return

        del self._pending[frame.id]
        if isinstance(frame, ErrorFrame):
            error = error_from_wire(frame.code, frame.kind, frame.message)
            self._fail_request(frame.id, entry.request, error)
        else:
            try:
                result = result_adapter(entry.request.type).validate_python(frame.result)
            except ValidationError as exc:
                message = describe_validation_error(exc, "result")
                self._fail_request(frame.id, entry.request, ProtocolError(message))
            else:
                self._events.append(
                    ResponseReceived(request_id=frame.id, request=entry.request, result=result)
                )
        self._flush()

    def _flush(self) -> None:
        """Send waiting requests, oldest first, up to the server's in-flight limit."""
        if self._state is not ClientState.OPEN or self._server_draining:
            return
        assert self._limits is not None
        in_flight = sum(entry.sent for entry in self._pending.values())
        too_big: list[tuple[str, _Pending, ProtocolError]] = []
        for request_id, entry in self._pending.items():
            if entry.sent:
                continue
            if in_flight >= self._limits.max_in_flight_requests:
                break
            text = encode_request(request_id, entry.request)
            try:
                check_frame_size(text, self._limits.max_frame_bytes)
            except ProtocolError as size_error:
                too_big.append((request_id, entry, size_error))
                continue
            self._frames.append(text)
            entry.sent = True
            in_flight += 1
        for request_id, entry, error in too_big:
            del self._pending[request_id]
            self._fail_request(
                request_id,
                entry.request,
                InvalidInput(
                    f"{entry.request.type} request not sent: {error.message}", code=error.code
                ),
            )

    def _fail(self, error: ProtocolError) -> None:
        logger.debug("closing: %s", error.message)
        self._close = Close(error.close_code, error.code)
        self._disconnect(error.close_code, error.code, error)

    def _disconnect(self, code: int, reason: str, error: ChatError) -> None:
        self._state = ClientState.DISCONNECTED
        self._server_draining = False
        self._close_error = None
        lost: list[tuple[str, _Pending]] = []
        for request_id, entry in self._pending.items():
            if not entry.sent:
                continue
            entry.sent = False
            if not isinstance(entry.request, SendMessage):
                lost.append((request_id, entry))
        for request_id, entry in lost:
            del self._pending[request_id]
            self._fail_request(
                request_id,
                entry.request,
                ChatError(
                    f"the connection closed before request {request_id} "
                    f"({entry.request.type}) got a response; the server may have run it",
                    code=ErrorCode.CONNECTION_LOST,
                ),
            )
        self._events.append(
            Disconnected(code=code, reason=reason, policy=reconnect_policy(code), error=error)
        )

    def _fail_request(self, request_id: str, request: Request, error: ChatError) -> None:
        self._events.append(RequestFailed(request_id=request_id, request=request, error=error))
