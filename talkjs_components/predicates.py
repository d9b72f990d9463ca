"""TalkJS message and conversation predicates: validation, normalization and matching.

TalkJS filters the messages of a Chatbox with ``messageFilter`` and the
conversations of an Inbox feed with ``feedFilter``. Both options take a JSON
predicate. :func:`compile_message_predicate` and
:func:`compile_conversation_predicate` validate a whole predicate up front and
return an immutable matcher that tests one message or conversation at a time.

Grammar, in TypeScript notation (``?`` marks an optional key)::

    FieldPredicate<T>    = ["==" | "!=", T] | ["oneOf" | "!oneOf", T[]]
    NumberPredicate      = [">" | "<" | ">=" | "<=", number]
                         | ["between" | "!between", [low, high]]
    CustomFieldPredicate = FieldPredicate<string> | "exists" | "!exists"

    SimpleMessagePredicate = {
        sender?: {
            id?: FieldPredicate<string>,
            locale?: FieldPredicate<string>,
            role?: FieldPredicate<string>,
            custom?: {[key: string]: CustomFieldPredicate},
        },
        type?: FieldPredicate<"UserMessage" | "SystemMessage">,
        origin?: FieldPredicate<"web" | "rest" | "import" | "email">,
        custom?: {[key: string]: CustomFieldPredicate},
        createdAt?: NumberPredicate,
    }
    MessagePredicate = SimpleMessagePredicate | ["any", SimpleMessagePredicate[]]

    SimpleConversationPredicate = {
        access?: FieldPredicate<"Read" | "ReadWrite" | "None">,
        custom?: {[key: string]: CustomFieldPredicate},
        hasUnreadMessages?: boolean,            // alias: isUnread
        subject?: FieldPredicate<string> | "set" | "!set",
        lastMessageTs?: NumberPredicate,
        createdAt?: NumberPredicate,
    }
    ConversationPredicate =
        SimpleConversationPredicate | ["any", SimpleConversationPredicate[]]

Semantics:

* Every key of an object must hold. ``["any", [...]]`` holds when at least one
  of its objects holds, so ``["any", []]`` matches nothing. ``None`` and
  ``{}`` match everything. An ``any`` list cannot contain another ``any`` list.
* Keys may be camelCase, as in TalkJS, or snake_case (``created_at``,
  ``has_unread_messages``, ``is_unread``, ``last_message_ts``). Custom field
  names are used as given.
* ``between`` and ``!between`` include both bounds, and ``low <= high`` is
  required. Timestamps are milliseconds since the Unix epoch.
* Each negated form (``!=``, ``!oneOf``, ``!between``, ``!exists``, ``!set``)
  is the exact negation of its positive form. So a missing value (a custom
  field that is not set, a sender without a role, a conversation without a
  subject or without messages) fails ``==``, ``oneOf``, ``exists``, ``set``
  and ``>``, ``<``, ``>=``, ``<=``, ``between``, and passes the negated forms.
  ``exists`` and ``set`` test only for presence, so an empty string counts as
  present.
* A message without a sender (a system message, or a sender the caller could
  not load) fails every ``sender`` condition, including ``!=``, ``!oneOf``
  and an empty ``sender: {}``. TalkJS documents ``sender`` as selecting
  messages "sent by a sender that has all of the given properties"
  (``MessagePredicate.sender`` in the talkjs_flutter API reference).
* ``access`` is the access of the user the feed belongs to, and ``"None"``
  when that user is not a participant.

Values must be JSON-like: strings for string fields (``StrEnum`` members such
as ``MessageType.USER`` count as strings), ``int`` or finite ``float`` for
numbers (never ``bool``), ``True`` or ``False`` for ``hasUnreadMessages``, and
lists or tuples for arrays. An invalid predicate raises
:class:`~talkjs_components.errors.InvalidInput` naming the path of the bad
part, the bad value and the accepted forms, for example::

    messageFilter.sender.id: unknown operator '=' in ['=', 'alice']:
    use '==', '!=', 'oneOf' or '!oneOf'

The normalized form (``matcher.predicate``) uses camelCase keys
(``isUnread`` becomes ``hasUnreadMessages``), lists for arrays, sorted and
deduplicated ``oneOf`` values, integral floats as ints, and leaves out empty
``custom`` objects. Matchers compare and hash by this form, so two compiles of
equivalent predicates are equal and can serve as a ReactPy hook dependency.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, Protocol, TypeAlias, TypeGuard, TypeVar

from .errors import InvalidInput
from .models import AccessLevel, Conversation, Message, MessageOrigin, MessageType, User

__all__ = [
    "ConversationMatcher",
    "JsonValue",
    "MessageMatcher",
    "compile_conversation_predicate",
    "compile_message_predicate",
]

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
"""A JSON value as Python objects, as ``json.loads`` returns it."""

Number: TypeAlias = int | float

_MESSAGE_ROOT = "messageFilter"
_CONVERSATION_ROOT = "feedFilter"

_MESSAGE_TYPES = tuple(kind.value for kind in MessageType)
_MESSAGE_ORIGINS = tuple(origin.value for origin in MessageOrigin)
_NO_ACCESS = "None"
_ACCESS_LEVELS = (*(level.value for level in AccessLevel), _NO_ACCESS)

_EQUALITY_OPERATORS = ("==", "!=")
_MEMBERSHIP_OPERATORS = ("oneOf", "!oneOf")
_FIELD_OPERATORS = _EQUALITY_OPERATORS + _MEMBERSHIP_OPERATORS
_COMPARISONS: dict[str, Callable[[Number, Number], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
_RANGE_OPERATORS = ("between", "!between")
_NUMBER_OPERATORS = (*_COMPARISONS, *_RANGE_OPERATORS)
_EXISTS_KEYWORDS = ("exists", "!exists")
_SET_KEYWORDS = ("set", "!set")

_FIELD_FORMS = ("['==', value]", "['!=', value]", "['oneOf', [values]]", "['!oneOf', [values]]")
_NUMBER_FORMS = (
    *(f"[{comparison!r}, number]" for comparison in _COMPARISONS),
    "['between', [low, high]]",
    "['!between', [low, high]]",
)

_MESSAGE_KEYS = {
    "sender": "sender",
    "type": "type",
    "origin": "origin",
    "custom": "custom",
    "createdAt": "createdAt",
    "created_at": "createdAt",
}
_SENDER_KEYS = {"id": "id", "locale": "locale", "role": "role", "custom": "custom"}
_CONVERSATION_KEYS = {
    "access": "access",
    "custom": "custom",
    "hasUnreadMessages": "hasUnreadMessages",
    "has_unread_messages": "hasUnreadMessages",
    "isUnread": "hasUnreadMessages",
    "is_unread": "hasUnreadMessages",
    "subject": "subject",
    "lastMessageTs": "lastMessageTs",
    "last_message_ts": "lastMessageTs",
    "createdAt": "createdAt",
    "created_at": "createdAt",
}

T = TypeVar("T")
V = TypeVar("V", contravariant=True)


# --- Error messages ---------------------------------------------------------


def _fail(path: str, problem: str, remedy: str) -> NoReturn:
    """Raise InvalidInput as ``"{path}: {problem}: {remedy}"``."""
    raise InvalidInput(f"{path}: {problem}: {remedy}")


def _quoted_list(items: Collection[object], conjunction: str = "or") -> str:
    """Join reprs of ``items`` as "'a', 'b' or 'c'"."""
    return _joined([repr(item) for item in items], conjunction)


def _joined(words: list[str], conjunction: str = "or") -> str:
    """Join ``words`` as "a, b or c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _child_path(path: str, key: str) -> str:
    """Return the path of ``key`` inside the object at ``path``."""
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


# --- Conditions on single values --------------------------------------------


class _ValueCondition(Protocol[V]):
    """A compiled condition on one value, which is ``None`` when the value is missing."""

    def __call__(self, value: V | None, /) -> bool: ...

    def to_json(self) -> JsonValue: ...


@dataclass(frozen=True)
class _StringCondition:
    """A compiled ``FieldPredicate<string>``."""

    operator: str
    values: tuple[str, ...]

    def __call__(self, value: str | None) -> bool:
        found = value is not None and value in self.values
        return found if self.operator in ("==", "oneOf") else not found

    def to_json(self) -> JsonValue:
        if self.operator in _EQUALITY_OPERATORS:
            return [self.operator, self.values[0]]
        return [self.operator, list(self.values)]


@dataclass(frozen=True)
class _PresenceCondition:
    """A compiled ``"exists"``, ``"!exists"``, ``"set"`` or ``"!set"``."""

    keyword: str

    def __call__(self, value: str | None) -> bool:
        return (value is not None) != self.keyword.startswith("!")

    def to_json(self) -> JsonValue:
        return self.keyword


@dataclass(frozen=True)
class _NumberCondition:
    """A compiled ``NumberPredicate``: one bound, or ``(low, high)`` for a range."""

    operator: str
    bounds: tuple[Number, ...]

    def __call__(self, value: Number | None) -> bool:
        if self.operator in _RANGE_OPERATORS:
            low, high = self.bounds
            inside = value is not None and low <= value <= high
            return inside if self.operator == "between" else not inside
        return value is not None and _COMPARISONS[self.operator](value, self.bounds[0])

    def to_json(self) -> JsonValue:
        if self.operator in _RANGE_OPERATORS:
            return [self.operator, list(self.bounds)]
        return [self.operator, self.bounds[0]]


def _passes(condition: _ValueCondition[T] | None, value: T | None) -> bool:
    """Return whether ``value`` passes ``condition``, which is true when there is no condition."""
    return condition is None or condition(value)


def _put(result: dict[str, JsonValue], key: str, condition: _ValueCondition[T] | None) -> None:
    """Store the JSON form of ``condition`` under ``key`` unless there is no condition."""
    if condition is not None:
        result[key] = condition.to_json()


# --- Compiled objects -------------------------------------------------------

_CustomFieldCondition: TypeAlias = _StringCondition | _PresenceCondition


@dataclass(frozen=True)
class _CustomClause:
    """A compiled ``custom`` object: conditions by custom field name, sorted by name."""

    conditions: tuple[tuple[str, _CustomFieldCondition], ...]

    def __call__(self, custom: Mapping[str, str | None] | None) -> bool:
        fields = custom or {}
        return all(condition(fields.get(key)) for key, condition in self.conditions)

    def to_json(self) -> JsonValue:
        return {key: condition.to_json() for key, condition in self.conditions}


@dataclass(frozen=True)
class _SenderClause:
    """A compiled ``sender`` object of a message predicate."""

    id: _StringCondition | None
    locale: _StringCondition | None
    role: _StringCondition | None
    custom: _CustomClause | None

    def __call__(self, sender: User | None) -> bool:
        if sender is None:
            return False
        return (
            _passes(self.id, sender.id)
            and _passes(self.locale, sender.locale)
            and _passes(self.role, sender.role)
            and _passes(self.custom, sender.custom)
        )

    def to_json(self) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        _put(result, "id", self.id)
        _put(result, "locale", self.locale)
        _put(result, "role", self.role)
        _put_custom(result, self.custom)
        return result


@dataclass(frozen=True)
class _MessageClause:
    """A compiled ``SimpleMessagePredicate``."""

    sender: _SenderClause | None
    type: _StringCondition | None
    origin: _StringCondition | None
    custom: _CustomClause | None
    created_at: _NumberCondition | None

    def __call__(self, message: Message, sender: User | None) -> bool:
        return (
            (self.sender is None or self.sender(sender))
            and _passes(self.type, message.type.value)
            and _passes(self.origin, message.origin.value)
            and _passes(self.custom, message.custom)
            and _passes(self.created_at, message.created_at)
        )

    def to_json(self) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        if self.sender is not None:
            result["sender"] = self.sender.to_json()
        _put(result, "type", self.type)
        _put(result, "origin", self.origin)
        _put_custom(result, self.custom)
        _put(result, "createdAt", self.created_at)
        return result


@dataclass(frozen=True)
class _ConversationState:
    """The values a conversation predicate reads besides the conversation itself."""

    access: str
    has_unread_messages: bool
    last_message_ts: int | None


@dataclass(frozen=True)
class _ConversationClause:
    """A compiled ``SimpleConversationPredicate``."""

    access: _StringCondition | None
    custom: _CustomClause | None
    has_unread_messages: bool | None
    subject: _StringCondition | _PresenceCondition | None
    last_message_ts: _NumberCondition | None
    created_at: _NumberCondition | None

    def __call__(self, conversation: Conversation, state: _ConversationState) -> bool:
        unread_matches = (
            self.has_unread_messages is None
            or self.has_unread_messages == state.has_unread_messages
        )
        return (
            unread_matches
            and _passes(self.access, state.access)
            and _passes(self.custom, conversation.custom)
            and _passes(self.subject, conversation.subject)
            and _passes(self.last_message_ts, state.last_message_ts)
            and _passes(self.created_at, conversation.created_at)
        )

    def to_json(self) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        _put(result, "access", self.access)
        _put_custom(result, self.custom)
        if self.has_unread_messages is not None:
            result["hasUnreadMessages"] = self.has_unread_messages
        _put(result, "subject", self.subject)
        _put(result, "lastMessageTs", self.last_message_ts)
        _put(result, "createdAt", self.created_at)
        return result


def _put_custom(result: dict[str, JsonValue], custom: _CustomClause | None) -> None:
    """Store a ``custom`` object unless it is missing or empty (both match everything)."""
    if custom is not None and custom.conditions:
        result["custom"] = custom.to_json()


# --- Matchers ---------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _Matcher:
    """Base of the matchers: equality, hashing and JSON form by the normalized predicate."""

    _canonical: str
    """The normalized predicate as JSON text with sorted keys and no spaces."""

    @property
    def predicate(self) -> JsonValue:
        """The normalized predicate as JSON-ready Python objects (a fresh copy on each read)."""
        value: JsonValue = json.loads(self._canonical)
        return value

    @property
    def matches_everything(self) -> bool:
        """Whether the predicate has no conditions (``None`` or ``{}``)."""
        return self._canonical == "{}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.predicate!r})"


@dataclass(frozen=True, repr=False)
class MessageMatcher(_Matcher):
    """A compiled ``MessagePredicate``, created by :func:`compile_message_predicate`.

    Instances are immutable. They compare equal and hash alike when their
    normalized predicates (:attr:`predicate`) are equal.
    """

    _clauses: tuple[_MessageClause, ...] = field(compare=False)

    def __call__(self, message: Message, sender: User | None) -> bool:
        """Return whether ``message`` matches the predicate.

        Args:
            message: The message to test.
            sender: The user who sent ``message``, whose fields the ``sender``
                conditions read. Pass ``None`` for a system message or when the
                sender is unknown, so every ``sender`` condition fails.
        """
        return any(clause(message, sender) for clause in self._clauses)


@dataclass(frozen=True, repr=False)
class ConversationMatcher(_Matcher):
    """A compiled ``ConversationPredicate``, created by :func:`compile_conversation_predicate`.

    Instances are immutable. They compare equal and hash alike when their
    normalized predicates (:attr:`predicate`) are equal.
    """

    _clauses: tuple[_ConversationClause, ...] = field(compare=False)

    def __call__(
        self,
        conversation: Conversation,
        *,
        user_id: str,
        has_unread_messages: bool,
        last_message_ts: int | None,
    ) -> bool:
        """Return whether ``conversation`` matches the predicate for one user.

        Args:
            conversation: The conversation to test.
            user_id: The user whose feed is filtered. ``access`` conditions read
                this user's access, which is ``"None"`` when they are not a
                participant.
            has_unread_messages: Whether the user has unread messages in the
                conversation.
            last_message_ts: Creation time of the conversation's last message in
                milliseconds since the Unix epoch, or ``None`` when it has no
                messages.
        """
        access = conversation.access_of(user_id)
        state = _ConversationState(
            access=access.value if access is not None else _NO_ACCESS,
            has_unread_messages=has_unread_messages,
            last_message_ts=last_message_ts,
        )
        return any(clause(conversation, state) for clause in self._clauses)


def compile_message_predicate(value: object | None, *, path: str = _MESSAGE_ROOT) -> MessageMatcher:
    """Validate a TalkJS ``MessagePredicate`` and compile it into a matcher.

    Args:
        value: A ``messageFilter`` predicate as described in the module
            docstring, ``None`` to match every message, or a matcher, which is
            returned unchanged.
        path: Where the predicate was given, the start of every error
            message (``messageFilter`` unless the caller names another prop).

    Returns:
        The compiled matcher.

    Raises:
        InvalidInput: The predicate is invalid. The message names the path of
            the bad part, the bad value and the accepted forms.
    """
    if isinstance(value, MessageMatcher):
        return value
    clauses, normalized = _compile(value, path, _parse_message_clause)
    return MessageMatcher(_canonical=_canonical_json(normalized), _clauses=clauses)


def compile_conversation_predicate(value: object | None) -> ConversationMatcher:
    """Validate a TalkJS ``ConversationPredicate`` and compile it into a matcher.

    Args:
        value: A ``feedFilter`` predicate as described in the module docstring,
            ``None`` to match every conversation, or a matcher, which is
            returned unchanged.

    Returns:
        The compiled matcher.

    Raises:
        InvalidInput: The predicate is invalid. The message names the path of
            the bad part, the bad value and the accepted forms.
    """
    if isinstance(value, ConversationMatcher):
        return value
    clauses, normalized = _compile(value, _CONVERSATION_ROOT, _parse_conversation_clause)
    return ConversationMatcher(_canonical=_canonical_json(normalized), _clauses=clauses)


def _canonical_json(value: JsonValue) -> str:
    """Serialize ``value`` deterministically, so equal predicates give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


# --- Parsing: predicates and "any" lists ------------------------------------


class _Clause(Protocol):
    def to_json(self) -> dict[str, JsonValue]: ...


ClauseT = TypeVar("ClauseT", bound=_Clause)


def _compile(
    value: object, path: str, parse_clause: Callable[[object, str], ClauseT]
) -> tuple[tuple[ClauseT, ...], JsonValue]:
    """Parse a whole predicate into its alternatives and its normalized JSON form."""
    if value is None:
        value = {}
    if isinstance(value, Mapping):
        clause = parse_clause(value, path)
        return (clause,), clause.to_json()
    if isinstance(value, list | tuple):
        clauses = _parse_any(value, path, parse_clause)
        return clauses, ["any", [clause.to_json() for clause in clauses]]
    _fail(
        path,
        f"invalid predicate {value!r}",
        "use an object such as {'createdAt': ['>', 0]}, ['any', [object, ...]] or None",
    )


def _parse_any(
    value: list[object] | tuple[object, ...],
    path: str,
    parse_clause: Callable[[object, str], ClauseT],
) -> tuple[ClauseT, ...]:
    """Parse ``["any", [object, ...]]`` into its alternatives."""
    keyword, alternatives = _as_pair(value, path, "use ['any', [object, ...]]")
    if keyword != "any":
        _fail(path, f"unknown operator {keyword!r} in {value!r}", "use 'any'")
    if not isinstance(alternatives, list | tuple):
        _fail(path, f"invalid value {alternatives!r} in {value!r}", "use a list of objects")
    clauses: list[ClauseT] = []
    for index, alternative in enumerate(alternatives):
        item_path = f"{path}[1][{index}]"
        if not isinstance(alternative, Mapping):
            _fail(
                item_path,
                f"invalid predicate {alternative!r}",
                "use an object, because an 'any' list contains only objects and cannot be nested",
            )
        clauses.append(parse_clause(alternative, item_path))
    return tuple(clauses)


def _as_pair(value: object, path: str, remedy: str) -> tuple[object, object]:
    """Return the two items of a ``[operator, operand]`` list, or raise InvalidInput."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        _fail(path, f"invalid predicate {value!r}", remedy)
    return value[0], value[1]


def _read_object(
    value: object, path: str, keys: Mapping[str, str]
) -> dict[str, tuple[object, str]]:
    """Check the keys of a predicate object and map each canonical key to its value and path.

    Args:
        value: The object to read.
        path: Path of ``value``, for error messages.
        keys: Every accepted spelling of a key, mapped to its canonical camelCase form.

    Raises:
        InvalidInput: ``value`` is not a mapping, has an unknown key, or spells
            one key twice (``createdAt`` and ``created_at``).
    """
    if not isinstance(value, Mapping):
        accepted_keys = _quoted_list(keys, "and")
        _fail(path, f"invalid value {value!r}", f"use an object with keys from {accepted_keys}")

    fields: dict[str, tuple[object, str]] = {}
    spellings: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or key not in keys:
            _fail(path, f"unknown key {key!r}", f"use {_quoted_list(keys)}")
        name = keys[key]
        if name in spellings:
            _fail(
                path,
                f"keys {spellings[name]!r} and {key!r} name the same field",
                "use only one of them",
            )
        spellings[name] = key
        fields[name] = (item, _child_path(path, key))
    return fields


def _optional(
    fields: Mapping[str, tuple[object, str]], name: str, parse: Callable[[object, str], T]
) -> T | None:
    """Parse the field ``name`` with ``parse`` when it is present, else return ``None``."""
    if name not in fields:
        return None
    value, path = fields[name]
    return parse(value, path)


# --- Parsing: objects -------------------------------------------------------


def _parse_message_clause(value: object, path: str) -> _MessageClause:
    fields = _read_object(value, path, _MESSAGE_KEYS)
    return _MessageClause(
        sender=_optional(fields, "sender", _parse_sender_clause),
        type=_optional(fields, "type", _parse_message_type),
        origin=_optional(fields, "origin", _parse_message_origin),
        custom=_optional(fields, "custom", _parse_custom_clause),
        created_at=_optional(fields, "createdAt", _parse_number_predicate),
    )


def _parse_sender_clause(value: object, path: str) -> _SenderClause:
    fields = _read_object(value, path, _SENDER_KEYS)
    return _SenderClause(
        id=_optional(fields, "id", _parse_string_predicate),
        locale=_optional(fields, "locale", _parse_string_predicate),
        role=_optional(fields, "role", _parse_string_predicate),
        custom=_optional(fields, "custom", _parse_custom_clause),
    )


def _parse_conversation_clause(value: object, path: str) -> _ConversationClause:
    fields = _read_object(value, path, _CONVERSATION_KEYS)
    return _ConversationClause(
        access=_optional(fields, "access", _parse_access),
        custom=_optional(fields, "custom", _parse_custom_clause),
        has_unread_messages=_optional(fields, "hasUnreadMessages", _parse_bool),
        subject=_optional(fields, "subject", _parse_subject_predicate),
        last_message_ts=_optional(fields, "lastMessageTs", _parse_number_predicate),
        created_at=_optional(fields, "createdAt", _parse_number_predicate),
    )


def _parse_custom_clause(value: object, path: str) -> _CustomClause:
    """Parse ``{name: CustomFieldPredicate}``. Custom field names can be any string."""
    if not isinstance(value, Mapping):
        _fail(
            path,
            f"invalid value {value!r}",
            "use an object that maps custom field names to predicates, "
            "such as {'category': ['==', 'news']}",
        )
    conditions: list[tuple[str, _CustomFieldCondition]] = []
    for key, predicate in value.items():
        if not isinstance(key, str):
            _fail(path, f"invalid custom field name {key!r}", "use a string")
        conditions.append((key, _parse_custom_field_predicate(predicate, _child_path(path, key))))
    return _CustomClause(tuple(sorted(conditions, key=lambda item: item[0])))


# --- Parsing: field predicates ----------------------------------------------


def _parse_message_type(value: object, path: str) -> _StringCondition:
    return _parse_string_predicate(value, path, choices=_MESSAGE_TYPES)


def _parse_message_origin(value: object, path: str) -> _StringCondition:
    return _parse_string_predicate(value, path, choices=_MESSAGE_ORIGINS)


def _parse_access(value: object, path: str) -> _StringCondition:
    return _parse_string_predicate(value, path, choices=_ACCESS_LEVELS)


def _parse_custom_field_predicate(value: object, path: str) -> _CustomFieldCondition:
    if isinstance(value, str) and value in _EXISTS_KEYWORDS:
        return _PresenceCondition(value)
    return _parse_string_predicate(value, path, keywords=_EXISTS_KEYWORDS)


def _parse_subject_predicate(value: object, path: str) -> _StringCondition | _PresenceCondition:
    if isinstance(value, str) and value in _SET_KEYWORDS:
        return _PresenceCondition(value)
    return _parse_string_predicate(value, path, keywords=_SET_KEYWORDS)


def _parse_string_predicate(
    value: object,
    path: str,
    *,
    choices: tuple[str, ...] | None = None,
    keywords: tuple[str, ...] = (),
) -> _StringCondition:
    """Parse a ``FieldPredicate<string>``.

    Args:
        value: The predicate to parse.
        path: Path of ``value``, for error messages.
        choices: The only strings allowed as values, or ``None`` to allow any string.
        keywords: Bare keywords that the caller also accepts (``"exists"``),
            listed among the accepted forms in error messages.
    """
    remedy = f"use {_joined([*_FIELD_FORMS, *map(repr, keywords)])}"
    operator_name, operand = _as_pair(value, path, remedy)
    if not isinstance(operator_name, str) or operator_name not in _FIELD_OPERATORS:
        _fail(
            path,
            f"unknown operator {operator_name!r} in {value!r}",
            f"use {_quoted_list(_FIELD_OPERATORS)}",
        )
    expected = "a string" if choices is None else _quoted_list(choices)
    if operator_name in _EQUALITY_OPERATORS:
        return _StringCondition(
            operator_name, (_require_string(operand, path, value, expected, choices),)
        )
    if not isinstance(operand, list | tuple):
        items = "strings" if choices is None else f"items from {_quoted_list(choices, 'and')}"
        _fail(path, f"invalid value {operand!r} in {value!r}", f"use a list of {items}")
    strings = {_require_string(item, path, value, expected, choices) for item in operand}
    return _StringCondition(operator_name, tuple(sorted(strings)))


def _require_string(
    item: object, path: str, predicate: object, expected: str, choices: tuple[str, ...] | None
) -> str:
    """Return ``item`` if it is a string from ``choices`` (any string without choices).

    Raises:
        InvalidInput: ``item`` is not such a string.
    """
    if not isinstance(item, str) or (choices is not None and item not in choices):
        _fail(path, f"invalid value {item!r} in {predicate!r}", f"use {expected}")
    return item


def _parse_number_predicate(value: object, path: str) -> _NumberCondition:
    """Parse a ``NumberPredicate``."""
    operator_name, operand = _as_pair(value, path, f"use {_joined(list(_NUMBER_FORMS))}")
    if not isinstance(operator_name, str) or operator_name not in _NUMBER_OPERATORS:
        _fail(
            path,
            f"unknown operator {operator_name!r} in {value!r}",
            f"use {_quoted_list(_NUMBER_OPERATORS)}",
        )
    if operator_name in _RANGE_OPERATORS:
        return _NumberCondition(operator_name, _parse_range(operand, path, value))
    if not _is_number(operand):
        _fail(
            path,
            f"invalid value {operand!r} in {value!r}",
            "use a number: an int or a finite float, not a bool",
        )
    return _NumberCondition(operator_name, (_normalize_number(operand),))


def _parse_range(operand: object, path: str, predicate: object) -> tuple[Number, Number]:
    """Parse the ``[low, high]`` operand of ``between`` and ``!between``."""
    remedy = "use [low, high] with two numbers (int or finite float, not bool)"
    if not isinstance(operand, list | tuple) or len(operand) != 2:
        _fail(path, f"invalid value {operand!r} in {predicate!r}", remedy)
    low, high = operand
    if not _is_number(low) or not _is_number(high):
        _fail(path, f"invalid value {operand!r} in {predicate!r}", remedy)
    if low > high:
        _fail(
            path,
            f"invalid range {operand!r} in {predicate!r}",
            f"use [low, high] with low <= high, such as {[high, low]!r}",
        )
    return _normalize_number(low), _normalize_number(high)


def _is_number(value: object) -> TypeGuard[Number]:
    """Return whether ``value`` is an int or a finite float, excluding bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _normalize_number(value: Number) -> Number:
    """Return ``value`` as an int when it is integral, so ``1.0`` and ``1`` normalize alike."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _parse_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"invalid value {value!r}", "use True or False")
    return value
