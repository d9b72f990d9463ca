"""Encoding frames to JSON text and decoding received text into validated frames.

Decoding never returns an invalid frame. It raises :class:`ProtocolError`
when the connection must close (the frame is too big, is not JSON, has no
known ``type``, or a request has no usable ``id``), and :class:`InvalidRequest`
when a request gets an error response. Messages name the field, the
value (shortened) and what is allowed, but never a credential's value, and
the original pydantic or JSON exception is not chained, because it would
carry the raw input into tracebacks and logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from ..models import ChatEvent
from .close_codes import CloseCode
from .errors import ErrorCode, InvalidRequest, ProtocolError
from .frames import Hello, Ping, Pong, RequestId, ServerFrame
from .requests import REQUEST_TYPES, Request, RequestBase

__all__ = [
    "CLIENT_FRAME_TYPES",
    "SERVER_FRAME_TYPES",
    "ClientFrame",
    "EventFrameEncoder",
    "RequestFrame",
    "check_frame_size",
    "decode_client_frame",
    "decode_server_frame",
    "encode_event_frame",
    "encode_frame",
    "encode_request",
    "encode_result",
    "frame_size",
    "shorten",
]

_MAX_SHOWN_CHARACTERS = 40
"""Maximum length of a value quoted in an error message, in characters of its JSON form."""

_HIDDEN_FIELDS = frozenset({"credentials"})
"""Top-level fields whose values error messages never show."""


@dataclass(frozen=True)
class RequestFrame:
    """A decoded request frame: the client-chosen id and the request."""

    id: str
    request: Request


ClientFrame = Hello | Ping | Pong | RequestFrame
"""Any decoded frame a client sends."""

_CLIENT_ADAPTER: TypeAdapter[Hello | Ping | Pong | Request] = TypeAdapter(
    Annotated[Hello | Ping | Pong | Request, Field(discriminator="type")]
)
_SERVER_ADAPTER: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
_REQUEST_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(RequestId)

CLIENT_FRAME_TYPES: tuple[str, ...] = ("hello", "ping", "pong", *REQUEST_TYPES)
"""``type`` values of the frames a client sends."""

SERVER_FRAME_TYPES: tuple[str, ...] = ("welcome", "result", "error", "event", "ping", "pong")
"""``type`` values of the frames a server sends."""


# -- encoding -----------------------------------------------------------------


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_frame(frame: BaseModel) -> str:
    """Encode a frame model as the JSON text of one websocket text frame."""
    return _dumps(frame.model_dump(mode="json", by_alias=True))


def encode_event_frame(event: ChatEvent) -> str:
    """Encode ``EventFrame(event=event)``, with pydantic's JSON serializer.

    The result decodes to the same frame as ``encode_frame`` gives. It skips
    the intermediate dictionary, which matters for events that carry a
    conversation of 1,000 participants.
    """
    return '{"type":"event","event":' + event.model_dump_json(by_alias=True) + "}"


class EventFrameEncoder:
    """Encodes event frames, reusing the text while the same event object comes again.

    A ``ChatService`` hands one event object to the listeners of all its
    recipients in one synchronous pass. Connections that share an encoder
    therefore encode each event once per fan-out instead of once per
    connection. Events are frozen models, so an event object's text never
    changes. The encoder keeps a reference to the last event until the next one arrives.
    Use one encoder from one thread.
    """

    def __init__(self) -> None:
        self._event: ChatEvent | None = None
        self._text = ""

    def encode(self, event: ChatEvent) -> str:
        """Return the text of ``EventFrame(event=event)``, encoded once per event object."""
        if event is not self._event:
            self._text = encode_event_frame(event)
            self._event = event
        return self._text


def encode_request(request_id: str, request: RequestBase) -> str:
    """Encode a request with its id, which the wire puts next to ``type``."""
    fields = request.model_dump(mode="json", by_alias=True)
    return _dumps({"type": fields.pop("type"), "id": request_id, **fields})


def encode_result(request_id: str, result: object) -> str:
    """Encode a result frame around a result already dumped to JSON-ready data."""
    return _dumps({"type": "result", "id": request_id, "result": result})


# -- size -----------------------------------------------------------------------


def frame_size(text: str) -> int:
    """Return the size of ``text`` in UTF-8 bytes, as it travels in a websocket frame."""
    return len(text.encode("utf-8", "surrogatepass"))


def check_frame_size(text: str, max_bytes: int) -> None:
    """Raise ``ProtocolError`` (``frame_too_big``) when ``text`` is over ``max_bytes``.

    A UTF-8 character has at most 4 bytes, so short texts skip the encoding.
    """
    if len(text) * 4 <= max_bytes:
        return
    size = frame_size(text)
    if size > max_bytes:
        raise ProtocolError(
            f"frame of {size} bytes is larger than the limit of {max_bytes} bytes "
            "(max_frame_bytes): shorten the text or the custom data",
            code=ErrorCode.FRAME_TOO_BIG,
            close_code=CloseCode.MESSAGE_TOO_BIG,
        )


# -- decoding ---------------------------------------------------------------------


def decode_client_frame(
    text: str, *, max_bytes: int, supported_versions: Sequence[int]
) -> ClientFrame:
    """Decode a frame received by a server.

    A hello is checked for a common protocol version before its other fields,
    so that a client of a newer version, whose hello may have fields this
    version does not know, gets ``unsupported_version`` and not a field error.

    Raises:
        ProtocolError: The connection must close with ``close_code``.
        InvalidRequest: A request with a valid id has invalid arguments.
    """
    check_frame_size(text, max_bytes)
    data = _parse_object(text)
    frame_type = _frame_type(data, CLIENT_FRAME_TYPES)

    if frame_type == "hello":
        _check_versions(data.get("versions"), supported_versions)
    request_id: str | None = None
    if frame_type in REQUEST_TYPES:
        request_id = _request_id(data, frame_type)

    try:
        frame = _CLIENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        allowed = _allowed_fields(frame_type)
        message = describe_validation_error(exc, frame_type, allowed)
        if request_id is None:
            raise ProtocolError(message) from None
        raise InvalidRequest(message, request_id=request_id, request_type=frame_type) from None

    if isinstance(frame, Hello | Ping | Pong):
        return frame
    assert request_id is not None, "request types always pass through _request_id"
    return RequestFrame(id=request_id, request=frame)


def decode_server_frame(text: str) -> ServerFrame:
    """Decode a frame received by a client.

    Raises:
        ProtocolError: The frame is not JSON, has an unknown ``type`` or invalid fields.
    """
    data = _parse_object(text)
    frame_type = _frame_type(data, SERVER_FRAME_TYPES)
    try:
        return _SERVER_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(describe_validation_error(exc, frame_type)) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"frame is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        # NaN and Infinity, and integers longer than Python converts (4300 digits).
        raise ProtocolError(f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("frame is not valid JSON: it is nested too deeply to decode") from None
    if not isinstance(data, dict):
        raise ProtocolError(
            f"frame is a JSON {_json_type(data)}, but it must be a JSON object with a 'type' field"
        )
    return data


def _frame_type(data: dict[str, Any], known: Iterable[str]) -> str:
    expected = ", ".join(known)
    if "type" not in data:
        raise ProtocolError(f"frame has no 'type' field: use one of {expected}")
    frame_type = data["type"]
    if not isinstance(frame_type, str) or frame_type not in known:
        raise ProtocolError(f"unknown frame type {shorten(frame_type)}: use one of {expected}")
    return frame_type


def _check_versions(versions: object, supported: Sequence[int]) -> None:
    if not isinstance(versions, list) or not all(
        isinstance(version, int) and not isinstance(version, bool) for version in versions
    ):
        return  # Validation of the hello reports the field.
    if versions and not set(versions) & set(supported):
        raise ProtocolError(
            f"protocol versions {shorten(versions)} are not supported: this server speaks "
            f"{', '.join(map(str, supported))}; update the client",
            code=ErrorCode.UNSUPPORTED_VERSION,
            close_code=CloseCode.UNSUPPORTED_VERSION,
        )


def _request_id(data: dict[str, Any], frame_type: str) -> str:
    if "id" not in data:
        raise ProtocolError(
            f"{frame_type} frame has no 'id' field: every request needs a client-chosen id "
            "of 1 to 64 printable ASCII characters"
        )
    request_id = data.pop("id")
    try:
        return _REQUEST_ID_ADAPTER.validate_python(request_id)
    except ValidationError:
        raise ProtocolError(
            f"field 'id' of the {frame_type} frame has invalid value {shorten(request_id)}: "
            "use 1 to 64 printable ASCII characters without spaces"
        ) from None


def _allowed_fields(frame_type: str) -> list[str]:
    """Return the wire names of the fields a frame of ``frame_type`` may have."""
    if frame_type in REQUEST_TYPES:
        names = _wire_names(REQUEST_TYPES[frame_type])
        names.insert(1, "id")
        return names
    if frame_type == "hello":
        return _wire_names(Hello)
    return ["type"]


def _wire_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


# -- messages -------------------------------------------------------------------------


def describe_validation_error(
    exc: ValidationError, frame_type: str, allowed_fields: Sequence[str] = ()
) -> str:
    """Describe the first problem of ``exc`` in one sentence, and count the others."""
    errors = exc.errors(include_url=False)
    message = _describe(errors[0], frame_type, allowed_fields)
    if len(errors) > 1:
        others = len(errors) - 1
        message += f" (and {others} more {'problem' if others == 1 else 'problems'})"
    return message


def _describe(error: ErrorDetails, frame_type: str, allowed_fields: Sequence[str]) -> str:
    location = list(error["loc"])
    # A discriminated union puts the tag first, and the message names the frame type already.
    if location and location[0] == frame_type:
        location = location[1:]
    path = _format_path(location)
    kind = error["type"]
    # Pydantic's messages start with a capital letter; here they end a sentence.
    reason = error["msg"][:1].lower() + error["msg"][1:]
    reason = reason.removeprefix("value error, ")

    if not path:
        return f"{frame_type} frame is invalid: {reason}"
    if kind == "missing":
        return f"field '{path}' of the {frame_type} frame is missing"
    if kind == "extra_forbidden":
        message = f"field '{path}' is not allowed in the {frame_type} frame"
        if len(location) == 1 and allowed_fields:
            message += f": use {', '.join(allowed_fields)}"
        return message
    if location[0] in _HIDDEN_FIELDS:
        return f"field '{path}' of the {frame_type} frame is invalid (value hidden): {reason}"
    return (
        f"field '{path}' of the {frame_type} frame has invalid value "
        f"{shorten(error['input'])}: {reason}"
    )


def _format_path(location: Sequence[int | str]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def shorten(value: object) -> str:
    """Quote ``value`` as JSON for a message, cut to 40 characters with its length noted."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) <= _MAX_SHOWN_CHARACTERS:
        return text
    length = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters"
    return f"{text[:_MAX_SHOWN_CHARACTERS]}... ({length})"


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
