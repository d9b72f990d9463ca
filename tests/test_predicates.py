"""TalkJS message and conversation predicates: matching, normalization and validation errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from talkjs_components.errors import InvalidInput
from talkjs_components.models import (
    AccessLevel,
    Conversation,
    Message,
    MessageOrigin,
    MessageType,
    Participation,
    User,
)
from talkjs_components.predicates import (
    ConversationMatcher,
    MessageMatcher,
    compile_conversation_predicate,
    compile_message_predicate,
)

# --- Messages ----------------------------------------------------------------

ALICE = User(id="alice", role="admin", locale="en-US", custom={"team": "red", "left": None})
BOB = User(id="bob")
"""A user without role, locale or custom fields."""

MESSAGES: dict[str, tuple[Message, User | None]] = {
    "alice": (
        Message(
            id="m1",
            conversation_id="c1",
            sender_id="alice",
            text="Hello",
            created_at=1000,
            custom={"category": "news"},
        ),
        ALICE,
    ),
    "bob": (
        Message(
            id="m2",
            conversation_id="c1",
            sender_id="bob",
            text="Hi",
            origin=MessageOrigin.REST,
            created_at=2000,
            custom={"category": "sports", "priority": ""},
        ),
        BOB,
    ),
    "system": (
        Message(
            id="m3",
            conversation_id="c1",
            sender_id=None,
            text="Bob joined",
            type=MessageType.SYSTEM,
            created_at=3000,
        ),
        None,
    ),
}
"""Messages by name, each with its sender: alice's web message, bob's REST message, a system one."""

ALL_MESSAGES = {"alice", "bob", "system"}

MESSAGE_CASES = [
    # Empty predicates.
    pytest.param(None, ALL_MESSAGES, id="none"),
    pytest.param({}, ALL_MESSAGES, id="empty"),
    # sender.id
    pytest.param({"sender": {"id": ["==", "alice"]}}, {"alice"}, id="sender-id-eq"),
    pytest.param({"sender": {"id": ["!=", "alice"]}}, {"bob"}, id="sender-id-ne"),
    pytest.param(
        {"sender": {"id": ["oneOf", ["alice", "bob"]]}}, {"alice", "bob"}, id="sender-id-oneof"
    ),
    pytest.param({"sender": {"id": ["!oneOf", ["alice"]]}}, {"bob"}, id="sender-id-not-oneof"),
    pytest.param({"sender": {"id": ["oneOf", []]}}, set(), id="sender-id-oneof-empty"),
    pytest.param(
        {"sender": {"id": ["!oneOf", []]}}, {"alice", "bob"}, id="sender-id-not-oneof-empty"
    ),
    # sender.locale: bob has none, so he passes only the negated forms.
    pytest.param({"sender": {"locale": ["==", "en-US"]}}, {"alice"}, id="sender-locale-eq"),
    pytest.param({"sender": {"locale": ["!=", "en-US"]}}, {"bob"}, id="sender-locale-ne"),
    pytest.param(
        {"sender": {"locale": ["oneOf", ["en-US", "fr-FR"]]}}, {"alice"}, id="sender-locale-oneof"
    ),
    pytest.param(
        {"sender": {"locale": ["!oneOf", ["fr-FR"]]}},
        {"alice", "bob"},
        id="sender-locale-not-oneof",
    ),
    # sender.role
    pytest.param({"sender": {"role": ["==", "admin"]}}, {"alice"}, id="sender-role-eq"),
    pytest.param({"sender": {"role": ["!=", "admin"]}}, {"bob"}, id="sender-role-ne"),
    pytest.param(
        {"sender": {"role": ["oneOf", ["admin", "agent"]]}}, {"alice"}, id="sender-role-oneof"
    ),
    pytest.param({"sender": {"role": ["!oneOf", ["admin"]]}}, {"bob"}, id="sender-role-not-oneof"),
    # sender.custom: alice has team "red" and "left" set to None, which counts as missing.
    pytest.param({"sender": {"custom": {"team": "exists"}}}, {"alice"}, id="sender-custom-exists"),
    pytest.param(
        {"sender": {"custom": {"team": "!exists"}}}, {"bob"}, id="sender-custom-not-exists"
    ),
    pytest.param({"sender": {"custom": {"left": "exists"}}}, set(), id="sender-custom-none-exists"),
    pytest.param(
        {"sender": {"custom": {"left": "!exists"}}},
        {"alice", "bob"},
        id="sender-custom-none-not-exists",
    ),
    pytest.param({"sender": {"custom": {"team": ["==", "red"]}}}, {"alice"}, id="sender-custom-eq"),
    pytest.param({"sender": {"custom": {"team": ["!=", "red"]}}}, {"bob"}, id="sender-custom-ne"),
    pytest.param(
        {"sender": {"custom": {"team": ["oneOf", ["red", "blue"]]}}},
        {"alice"},
        id="sender-custom-oneof",
    ),
    pytest.param(
        {"sender": {"custom": {"team": ["!oneOf", ["blue"]]}}},
        {"alice", "bob"},
        id="sender-custom-not-oneof",
    ),
    # A system message has no sender, so it fails every sender condition.
    pytest.param({"sender": {}}, {"alice", "bob"}, id="sender-empty-needs-sender"),
    pytest.param(
        {"sender": {"custom": {"team": "!exists"}}}, {"bob"}, id="system-fails-sender-not-exists"
    ),
    pytest.param(
        {"sender": {"role": ["!oneOf", ["admin"]]}}, {"bob"}, id="system-fails-sender-not-oneof"
    ),
    # type
    pytest.param({"type": ["==", "UserMessage"]}, {"alice", "bob"}, id="type-eq"),
    pytest.param({"type": ["!=", "UserMessage"]}, {"system"}, id="type-ne"),
    pytest.param({"type": ["oneOf", ["SystemMessage"]]}, {"system"}, id="type-oneof"),
    pytest.param({"type": ["!oneOf", ["SystemMessage"]]}, {"alice", "bob"}, id="type-not-oneof"),
    pytest.param({"type": ["==", MessageType.SYSTEM]}, {"system"}, id="type-eq-enum-member"),
    # origin
    pytest.param({"origin": ["==", "rest"]}, {"bob"}, id="origin-eq"),
    pytest.param({"origin": ["!=", "rest"]}, {"alice", "system"}, id="origin-ne"),
    pytest.param({"origin": ["oneOf", ["web", "email"]]}, {"alice", "system"}, id="origin-oneof"),
    pytest.param({"origin": ["!oneOf", ["web"]]}, {"bob"}, id="origin-not-oneof"),
    # custom: bob's "priority" is an empty string, which exists.
    pytest.param({"custom": {"category": "exists"}}, {"alice", "bob"}, id="custom-exists"),
    pytest.param({"custom": {"category": "!exists"}}, {"system"}, id="custom-not-exists"),
    pytest.param({"custom": {"priority": "exists"}}, {"bob"}, id="custom-empty-string-exists"),
    pytest.param({"custom": {"category": ["==", "news"]}}, {"alice"}, id="custom-eq"),
    pytest.param({"custom": {"category": ["!=", "news"]}}, {"bob", "system"}, id="custom-ne"),
    pytest.param(
        {"custom": {"category": ["oneOf", ["news", "sports"]]}},
        {"alice", "bob"},
        id="custom-oneof",
    ),
    pytest.param(
        {"custom": {"category": ["!oneOf", ["news"]]}}, {"bob", "system"}, id="custom-not-oneof"
    ),
    pytest.param({"custom": {"missing": ["==", "x"]}}, set(), id="custom-missing-eq"),
    pytest.param({"custom": {"missing": ["!=", "x"]}}, ALL_MESSAGES, id="custom-missing-ne"),
    pytest.param({"custom": {"missing": ["oneOf", ["x"]]}}, set(), id="custom-missing-oneof"),
    pytest.param(
        {"custom": {"missing": ["!oneOf", ["x"]]}}, ALL_MESSAGES, id="custom-missing-not-oneof"
    ),
    pytest.param(
        {"custom": {"category": ["==", "sports"], "priority": "exists"}},
        {"bob"},
        id="custom-two-fields",
    ),
    pytest.param({"custom": {}}, ALL_MESSAGES, id="custom-empty"),
    # createdAt: the messages were created at 1000, 2000 and 3000.
    pytest.param({"createdAt": [">", 2000]}, {"system"}, id="created-gt"),
    pytest.param({"createdAt": [">=", 2000]}, {"bob", "system"}, id="created-ge"),
    pytest.param({"createdAt": ["<", 2000]}, {"alice"}, id="created-lt"),
    pytest.param({"createdAt": ["<=", 2000]}, {"alice", "bob"}, id="created-le"),
    pytest.param({"createdAt": [">", 1999.5]}, {"bob", "system"}, id="created-gt-float"),
    pytest.param(
        {"createdAt": ["between", [1000, 2000]]}, {"alice", "bob"}, id="created-between-inclusive"
    ),
    pytest.param({"createdAt": ["between", [2000, 2000]]}, {"bob"}, id="created-between-point"),
    pytest.param({"createdAt": ["between", [1000.5, 2999.5]]}, {"bob"}, id="created-between-float"),
    pytest.param(
        {"createdAt": ["!between", [1000, 2000]]}, {"system"}, id="created-not-between-inclusive"
    ),
    pytest.param({"created_at": ["<", 1500]}, {"alice"}, id="created-snake-case"),
    # Several keys must all hold.
    pytest.param(
        {"type": ["==", "UserMessage"], "origin": ["==", "web"]}, {"alice"}, id="two-keys"
    ),
    # any
    pytest.param(
        ["any", [{"sender": {"id": ["==", "alice"]}}, {"type": ["==", "SystemMessage"]}]],
        {"alice", "system"},
        id="any-two",
    ),
    pytest.param(["any", []], set(), id="any-empty"),
    pytest.param(["any", [{}]], ALL_MESSAGES, id="any-match-all"),
    pytest.param(("any", ({"origin": ("==", "rest")},)), {"bob"}, id="any-tuples"),
]


@pytest.mark.parametrize(("predicate", "expected"), MESSAGE_CASES)
def test_message_predicate_matches(predicate: object, expected: set[str]) -> None:
    matcher = compile_message_predicate(predicate)
    matched = {name for name, (message, sender) in MESSAGES.items() if matcher(message, sender)}
    assert matched == expected


def test_sender_condition_fails_without_sender() -> None:
    message, _ = MESSAGES["bob"]
    matcher = compile_message_predicate({"sender": {"id": ["!=", "alice"]}})
    assert matcher(message, BOB)
    assert not matcher(message, None)


# --- Conversations -------------------------------------------------------------

CONVERSATIONS: dict[str, tuple[Conversation, bool, int | None]] = {
    "support": (
        Conversation(
            id="support",
            subject="Help",
            custom={"category": "support"},
            participants={"alice": Participation(access=AccessLevel.READ_WRITE)},
            created_at=1000,
        ),
        True,
        5000,
    ),
    "announce": (
        Conversation(
            id="announce",
            subject="",
            participants={"alice": Participation(access=AccessLevel.READ)},
            created_at=2000,
        ),
        False,
        6000,
    ),
    "other": (
        Conversation(
            id="other",
            participants={"bob": Participation()},
            created_at=3000,
        ),
        False,
        None,
    ),
}
"""Conversations by name, seen by alice, with her unread state and the last message time.

alice writes in "support" and has unread messages there, reads "announce" (empty
subject) and is not a participant of "other", which has no subject and no messages.
"""

ALL_CONVERSATIONS = {"support", "announce", "other"}

CONVERSATION_CASES = [
    # Empty predicates.
    pytest.param(None, ALL_CONVERSATIONS, id="none"),
    pytest.param({}, ALL_CONVERSATIONS, id="empty"),
    # access
    pytest.param({"access": ["==", "ReadWrite"]}, {"support"}, id="access-eq-readwrite"),
    pytest.param({"access": ["==", "Read"]}, {"announce"}, id="access-eq-read"),
    pytest.param({"access": ["==", "None"]}, {"other"}, id="access-eq-none"),
    pytest.param({"access": ["!=", "None"]}, {"support", "announce"}, id="access-ne"),
    pytest.param(
        {"access": ["oneOf", ["Read", "ReadWrite"]]}, {"support", "announce"}, id="access-oneof"
    ),
    pytest.param({"access": ["!oneOf", ["Read"]]}, {"support", "other"}, id="access-not-oneof"),
    pytest.param({"access": ["==", AccessLevel.READ]}, {"announce"}, id="access-enum-member"),
    # custom
    pytest.param({"custom": {"category": "exists"}}, {"support"}, id="custom-exists"),
    pytest.param(
        {"custom": {"category": "!exists"}}, {"announce", "other"}, id="custom-not-exists"
    ),
    pytest.param({"custom": {"category": ["==", "support"]}}, {"support"}, id="custom-eq"),
    pytest.param(
        {"custom": {"category": ["!=", "support"]}}, {"announce", "other"}, id="custom-ne"
    ),
    pytest.param(
        {"custom": {"category": ["oneOf", ["support", "sales"]]}}, {"support"}, id="custom-oneof"
    ),
    pytest.param(
        {"custom": {"category": ["!oneOf", ["sales"]]}}, ALL_CONVERSATIONS, id="custom-not-oneof"
    ),
    # hasUnreadMessages and its spellings
    pytest.param({"hasUnreadMessages": True}, {"support"}, id="unread-true"),
    pytest.param({"hasUnreadMessages": False}, {"announce", "other"}, id="unread-false"),
    pytest.param({"has_unread_messages": True}, {"support"}, id="unread-snake-case"),
    pytest.param({"isUnread": True}, {"support"}, id="is-unread"),
    pytest.param({"is_unread": False}, {"announce", "other"}, id="is-unread-snake-case"),
    # subject: an empty subject is set, a missing one is not.
    pytest.param({"subject": "set"}, {"support", "announce"}, id="subject-set"),
    pytest.param({"subject": "!set"}, {"other"}, id="subject-not-set"),
    pytest.param({"subject": ["==", "Help"]}, {"support"}, id="subject-eq"),
    pytest.param({"subject": ["!=", "Help"]}, {"announce", "other"}, id="subject-ne"),
    pytest.param({"subject": ["oneOf", ["Help", ""]]}, {"support", "announce"}, id="subject-oneof"),
    pytest.param({"subject": ["!oneOf", ["Help"]]}, {"announce", "other"}, id="subject-not-oneof"),
    # lastMessageTs: 5000, 6000, and None for a conversation without messages.
    pytest.param({"lastMessageTs": [">", 5000]}, {"announce"}, id="last-gt"),
    pytest.param({"lastMessageTs": [">=", 5000]}, {"support", "announce"}, id="last-ge"),
    pytest.param({"lastMessageTs": ["<", 6000]}, {"support"}, id="last-lt"),
    pytest.param({"lastMessageTs": ["<=", 6000]}, {"support", "announce"}, id="last-le"),
    pytest.param(
        {"lastMessageTs": ["between", [5000, 6000]]},
        {"support", "announce"},
        id="last-between-inclusive",
    ),
    pytest.param(
        {"lastMessageTs": ["!between", [5000, 6000]]}, {"other"}, id="last-not-between-missing"
    ),
    pytest.param(
        {"lastMessageTs": ["!between", [5000, 5000]]},
        {"announce", "other"},
        id="last-not-between-point",
    ),
    pytest.param({"last_message_ts": [">", 0]}, {"support", "announce"}, id="last-snake-case"),
    # createdAt: 1000, 2000 and 3000.
    pytest.param({"createdAt": [">", 1000]}, {"announce", "other"}, id="created-gt"),
    pytest.param({"createdAt": ["<=", 1000]}, {"support"}, id="created-le"),
    pytest.param(
        {"createdAt": ["between", [1000, 3000]]}, ALL_CONVERSATIONS, id="created-between-inclusive"
    ),
    pytest.param(
        {"createdAt": ["!between", [1001, 2999]]}, {"support", "other"}, id="created-not-between"
    ),
    pytest.param({"created_at": ["<", 2000]}, {"support"}, id="created-snake-case"),
    # Several keys, and any.
    pytest.param(
        {"access": ["!=", "None"], "subject": ["!=", "Help"]}, {"announce"}, id="two-keys"
    ),
    pytest.param(
        ["any", [{"hasUnreadMessages": True}, {"access": ["==", "None"]}]],
        {"support", "other"},
        id="any-two",
    ),
    pytest.param(["any", []], set(), id="any-empty"),
]


@pytest.mark.parametrize(("predicate", "expected"), CONVERSATION_CASES)
def test_conversation_predicate_matches(predicate: object, expected: set[str]) -> None:
    matcher = compile_conversation_predicate(predicate)
    matched = {
        name
        for name, (conversation, unread, last_message_ts) in CONVERSATIONS.items()
        if matcher(
            conversation,
            user_id="alice",
            has_unread_messages=unread,
            last_message_ts=last_message_ts,
        )
    }
    assert matched == expected


def test_conversation_access_is_per_user() -> None:
    conversation, _, _ = CONVERSATIONS["other"]
    matcher = compile_conversation_predicate({"access": ["==", "ReadWrite"]})
    assert matcher(conversation, user_id="bob", has_unread_messages=False, last_message_ts=None)
    assert not matcher(
        conversation, user_id="alice", has_unread_messages=False, last_message_ts=None
    )


# --- Normalization, equality and immutability ----------------------------------

EQUIVALENT_MESSAGE_PREDICATES = [
    pytest.param(None, {}, id="none-and-empty"),
    pytest.param({"custom": {}}, {}, id="empty-custom"),
    pytest.param({"created_at": [">", 5]}, {"createdAt": [">", 5]}, id="snake-case"),
    pytest.param({"createdAt": [">", 5.0]}, {"createdAt": [">", 5]}, id="integral-float"),
    pytest.param(
        {"type": ["oneOf", ["UserMessage", "SystemMessage", "UserMessage"]]},
        {"type": ["oneOf", ["SystemMessage", "UserMessage"]]},
        id="oneof-order-and-duplicates",
    ),
    pytest.param(
        {"type": ("==", MessageType.USER)}, {"type": ["==", "UserMessage"]}, id="tuple-and-enum"
    ),
    pytest.param(
        {"custom": {"b": "exists", "a": "!exists"}},
        {"custom": {"a": "!exists", "b": "exists"}},
        id="custom-key-order",
    ),
    pytest.param(
        ("any", ({"created_at": ("between", (1, 2.0))},)),
        ["any", [{"createdAt": ["between", [1, 2]]}]],
        id="any-nested-forms",
    ),
]


@pytest.mark.parametrize(("first", "second"), EQUIVALENT_MESSAGE_PREDICATES)
def test_equivalent_message_predicates_equal(first: object, second: object) -> None:
    first_matcher = compile_message_predicate(first)
    second_matcher = compile_message_predicate(second)
    assert first_matcher == second_matcher
    assert hash(first_matcher) == hash(second_matcher)
    assert first_matcher.predicate == second_matcher.predicate


def test_equivalent_conversation_predicates_equal() -> None:
    spellings = [
        {"isUnread": True, "last_message_ts": [">", 1], "created_at": ["<", 2]},
        {"is_unread": True, "lastMessageTs": [">", 1.0], "createdAt": ["<", 2]},
        {"hasUnreadMessages": True, "lastMessageTs": [">", 1], "createdAt": ["<", 2]},
        {"has_unread_messages": True, "lastMessageTs": [">", 1], "createdAt": ["<", 2]},
    ]
    matchers = [compile_conversation_predicate(spelling) for spelling in spellings]
    assert len(set(matchers)) == 1
    assert matchers[0].predicate == {
        "createdAt": ["<", 2],
        "hasUnreadMessages": True,
        "lastMessageTs": [">", 1],
    }


def test_different_predicates_not_equal() -> None:
    greater = compile_message_predicate({"createdAt": [">", 1]})
    greater_or_equal = compile_message_predicate({"createdAt": [">=", 1]})
    assert greater != greater_or_equal
    assert compile_message_predicate(["any", [{}]]) != compile_message_predicate({})
    match_all_messages: object = compile_message_predicate({})
    assert match_all_messages != compile_conversation_predicate({})


def test_message_predicate_normalized_form() -> None:
    matcher = compile_message_predicate(
        [
            "any",
            [
                {
                    "sender": {"custom": {"team": "exists"}, "id": ("oneOf", ("bob", "alice"))},
                    "created_at": ["between", [0.0, 10.5]],
                },
                {"origin": ["!=", MessageOrigin.EMAIL], "custom": {}},
            ],
        ]
    )
    assert matcher.predicate == [
        "any",
        [
            {
                "createdAt": ["between", [0, 10.5]],
                "sender": {"custom": {"team": "exists"}, "id": ["oneOf", ["alice", "bob"]]},
            },
            {"origin": ["!=", "email"]},
        ],
    ]
    assert json.loads(json.dumps(matcher.predicate)) == matcher.predicate


def test_conversation_predicate_normalized_form() -> None:
    matcher = compile_conversation_predicate(
        {"subject": "!set", "access": ["!oneOf", ("Read",)], "custom": {"tier": ["!=", "free"]}}
    )
    assert matcher.predicate == {
        "access": ["!oneOf", ["Read"]],
        "custom": {"tier": ["!=", "free"]},
        "subject": "!set",
    }


def test_matches_everything_only_without_conditions() -> None:
    assert compile_message_predicate(None).matches_everything
    assert compile_message_predicate({"custom": {}}).matches_everything
    assert compile_conversation_predicate({}).matches_everything
    assert not compile_message_predicate({"sender": {}}).matches_everything
    assert not compile_message_predicate(["any", [{}]]).matches_everything
    assert not compile_conversation_predicate({"isUnread": False}).matches_everything


def test_predicate_returns_fresh_copy() -> None:
    matcher = compile_message_predicate({"type": ["==", "UserMessage"]})
    predicate = matcher.predicate
    assert isinstance(predicate, dict)
    predicate["origin"] = ["==", "rest"]
    assert matcher.predicate == {"type": ["==", "UserMessage"]}


def test_matcher_is_immutable() -> None:
    matcher = compile_message_predicate({"type": ["==", "UserMessage"]})
    attribute = "_canonical"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(matcher, attribute, "{}")
    assert not matcher.matches_everything


def test_compile_returns_given_matcher() -> None:
    message_matcher = compile_message_predicate({"type": ["==", "UserMessage"]})
    conversation_matcher = compile_conversation_predicate({"isUnread": True})
    assert compile_message_predicate(message_matcher) is message_matcher
    assert compile_conversation_predicate(conversation_matcher) is conversation_matcher


def test_matchers_work_as_dict_keys() -> None:
    cache: dict[MessageMatcher | ConversationMatcher, str] = {
        compile_message_predicate({"created_at": [">", 1]}): "messages",
        compile_conversation_predicate({"is_unread": True}): "feed",
    }
    assert cache[compile_message_predicate({"createdAt": [">", 1.0]})] == "messages"
    assert cache[compile_conversation_predicate({"hasUnreadMessages": True})] == "feed"


def test_matcher_repr_shows_predicate() -> None:
    matcher = compile_conversation_predicate({"is_unread": True})
    assert repr(matcher) == "ConversationMatcher({'hasUnreadMessages': True})"


# --- Validation errors ---------------------------------------------------------

FIELD_FORMS = "['==', value], ['!=', value], ['oneOf', [values]] or ['!oneOf', [values]]"
FIELD_OPERATORS = "use '==', '!=', 'oneOf' or '!oneOf'"
NUMBER_OPERATORS = "use '>', '<', '>=', '<=', 'between' or '!between'"
MESSAGE_KEYS = "use 'sender', 'type', 'origin', 'custom', 'createdAt' or 'created_at'"
SENDER_KEYS = "'id', 'locale', 'role' or 'custom'"
RANGE_FORM = "use [low, high] with two numbers"

INVALID_MESSAGE_PREDICATES = [
    # The whole predicate and any lists.
    pytest.param(5, "messageFilter", "5", "['any', [object, ...]] or None", id="number"),
    pytest.param("UserMessage", "messageFilter", "'UserMessage'", "use an object", id="string"),
    pytest.param(["all", [{}]], "messageFilter", "'all'", "use 'any'", id="any-operator"),
    pytest.param(["any"], "messageFilter", "['any']", "['any', [object, ...]]", id="any-short"),
    pytest.param(["any", {}], "messageFilter", "{}", "use a list of objects", id="any-not-list"),
    pytest.param(
        ["any", [{}, ["any", []]]],
        "messageFilter[1][1]",
        "['any', []]",
        "cannot be nested",
        id="any-nested",
    ),
    pytest.param(
        ["any", [{"type": ["==", "Bad"]}]],
        "messageFilter[1][0].type",
        "'Bad'",
        "use 'UserMessage' or 'SystemMessage'",
        id="any-item-field",
    ),
    # Keys.
    pytest.param({"sendr": {}}, "messageFilter", "'sendr'", MESSAGE_KEYS, id="unknown-key"),
    pytest.param({1: {}}, "messageFilter", "1", MESSAGE_KEYS, id="non-string-key"),
    pytest.param(
        {"createdAt": [">", 1], "created_at": [">", 2]},
        "messageFilter",
        "'created_at'",
        "use only one of them",
        id="key-spelled-twice",
    ),
    # sender
    pytest.param(
        {"sender": "alice"},
        "messageFilter.sender",
        "'alice'",
        "use an object with keys from 'id', 'locale', 'role' and 'custom'",
        id="sender-not-object",
    ),
    pytest.param(
        {"sender": {"name": ["==", "A"]}},
        "messageFilter.sender",
        "'name'",
        SENDER_KEYS,
        id="sender-unknown-key",
    ),
    pytest.param(
        {"sender": {"id": ["=", "alice"]}},
        "messageFilter.sender.id",
        "'='",
        FIELD_OPERATORS,
        id="sender-id-operator",
    ),
    pytest.param(
        {"sender": {"id": [["=="], "alice"]}},
        "messageFilter.sender.id",
        "['==']",
        FIELD_OPERATORS,
        id="sender-id-list-operator",
    ),
    pytest.param(
        {"sender": {"id": "alice"}},
        "messageFilter.sender.id",
        "'alice'",
        FIELD_FORMS,
        id="sender-id-bare-string",
    ),
    pytest.param(
        {"sender": {"id": ["==", "alice", "bob"]}},
        "messageFilter.sender.id",
        "['==', 'alice', 'bob']",
        FIELD_FORMS,
        id="sender-id-three-items",
    ),
    pytest.param(
        {"sender": {"id": ["==", 5]}},
        "messageFilter.sender.id",
        "5",
        "use a string",
        id="sender-id-number",
    ),
    pytest.param(
        {"sender": {"id": ["!=", None]}},
        "messageFilter.sender.id",
        "None",
        "use a string",
        id="sender-id-none",
    ),
    pytest.param(
        {"sender": {"role": ["oneOf", "admin"]}},
        "messageFilter.sender.role",
        "'admin'",
        "use a list of strings",
        id="sender-role-oneof-string",
    ),
    pytest.param(
        {"sender": {"locale": ["!oneOf", ["en", 5]]}},
        "messageFilter.sender.locale",
        "5",
        "use a string",
        id="sender-locale-oneof-item",
    ),
    pytest.param(
        {"sender": {"custom": {"team": "exist"}}},
        "messageFilter.sender.custom.team",
        "'exist'",
        f"{FIELD_FORMS.replace(' or ', ', ')}, 'exists' or '!exists'",
        id="sender-custom-keyword",
    ),
    pytest.param(
        {"sender": {"custom": ["team"]}},
        "messageFilter.sender.custom",
        "['team']",
        "use an object that maps custom field names to predicates",
        id="sender-custom-not-object",
    ),
    # type and origin
    pytest.param(
        {"type": ["==", "user"]},
        "messageFilter.type",
        "'user'",
        "use 'UserMessage' or 'SystemMessage'",
        id="type-value",
    ),
    pytest.param(
        {"type": ["oneOf", ["UserMessage", "Other"]]},
        "messageFilter.type",
        "'Other'",
        "use 'UserMessage' or 'SystemMessage'",
        id="type-oneof-item",
    ),
    pytest.param(
        {"type": "exists"}, "messageFilter.type", "'exists'", FIELD_FORMS, id="type-exists"
    ),
    pytest.param({"type": None}, "messageFilter.type", "None", FIELD_FORMS, id="type-none"),
    pytest.param(
        {"origin": ["==", "api"]},
        "messageFilter.origin",
        "'api'",
        "use 'web', 'rest', 'import' or 'email'",
        id="origin-value",
    ),
    pytest.param(
        {"origin": ["oneOf", "web"]},
        "messageFilter.origin",
        "'web'",
        "use a list of items from 'web', 'rest', 'import' and 'email'",
        id="origin-oneof-string",
    ),
    # custom
    pytest.param(
        {"custom": {1: "exists"}}, "messageFilter.custom", "1", "use a string", id="custom-key"
    ),
    pytest.param(
        {"custom": {"order id": ["==", 7]}},
        "messageFilter.custom['order id']",
        "7",
        "use a string",
        id="custom-value",
    ),
    pytest.param(
        {"custom": {"tag": "set"}},
        "messageFilter.custom.tag",
        "'set'",
        "'exists' or '!exists'",
        id="custom-set-keyword",
    ),
    # createdAt
    pytest.param(
        {"createdAt": ["=>", 5]},
        "messageFilter.createdAt",
        "'=>'",
        NUMBER_OPERATORS,
        id="created-operator",
    ),
    pytest.param(
        {"created_at": ["==", 5]},
        "messageFilter.created_at",
        "'=='",
        NUMBER_OPERATORS,
        id="created-snake-case-operator",
    ),
    pytest.param(
        {"createdAt": 5},
        "messageFilter.createdAt",
        "5",
        "['>', number], ['<', number], ['>=', number], ['<=', number], "
        "['between', [low, high]] or ['!between', [low, high]]",
        id="created-bare-number",
    ),
    pytest.param(
        {"createdAt": [">", "5"]},
        "messageFilter.createdAt",
        "'5'",
        "use a number",
        id="created-string",
    ),
    pytest.param(
        {"createdAt": [">", True]},
        "messageFilter.createdAt",
        "True",
        "not a bool",
        id="created-bool",
    ),
    pytest.param(
        {"createdAt": ["<", float("nan")]},
        "messageFilter.createdAt",
        "nan",
        "finite float",
        id="created-nan",
    ),
    pytest.param(
        {"createdAt": ["<=", float("inf")]},
        "messageFilter.createdAt",
        "inf",
        "finite float",
        id="created-infinity",
    ),
    pytest.param(
        {"createdAt": ["between", [1]]},
        "messageFilter.createdAt",
        "[1]",
        RANGE_FORM,
        id="between-one-bound",
    ),
    pytest.param(
        {"createdAt": ["between", 5]},
        "messageFilter.createdAt",
        "5",
        RANGE_FORM,
        id="between-not-list",
    ),
    pytest.param(
        {"createdAt": ["between", [1, "2"]]},
        "messageFilter.createdAt",
        "[1, '2']",
        RANGE_FORM,
        id="between-string-bound",
    ),
    pytest.param(
        {"createdAt": ["!between", [2, 1.5]]},
        "messageFilter.createdAt",
        "[2, 1.5]",
        "use [low, high] with low <= high",
        id="between-reversed",
    ),
]


@pytest.mark.parametrize(("predicate", "path", "bad_value", "remedy"), INVALID_MESSAGE_PREDICATES)
def test_invalid_message_predicate_rejected(
    predicate: object, path: str, bad_value: str, remedy: str
) -> None:
    _check_invalid(compile_message_predicate, predicate, path, bad_value, remedy)


ACCESS_LEVELS = "use 'Read', 'ReadWrite' or 'None'"

INVALID_CONVERSATION_PREDICATES = [
    pytest.param([], "feedFilter", "[]", "['any', [object, ...]]", id="empty-list"),
    pytest.param(
        ["any", [{"subject": "set"}, {"subject": "sett"}]],
        "feedFilter[1][1].subject",
        "'sett'",
        "'set' or '!set'",
        id="any-item-subject",
    ),
    pytest.param(
        {"unread": True},
        "feedFilter",
        "'unread'",
        "use 'access', 'custom', 'hasUnreadMessages', 'has_unread_messages', 'isUnread', "
        "'is_unread', 'subject', 'lastMessageTs', 'last_message_ts', 'createdAt' or 'created_at'",
        id="unknown-key",
    ),
    pytest.param({"sender": {}}, "feedFilter", "'sender'", "'access'", id="message-key"),
    pytest.param(
        {"is_unread": True, "hasUnreadMessages": False},
        "feedFilter",
        "'is_unread' and 'hasUnreadMessages'",
        "use only one of them",
        id="unread-spelled-twice",
    ),
    pytest.param(
        {"access": ["==", "Write"]}, "feedFilter.access", "'Write'", ACCESS_LEVELS, id="access"
    ),
    pytest.param(
        {"access": ["==", None]}, "feedFilter.access", "None", ACCESS_LEVELS, id="access-none"
    ),
    pytest.param(
        {"access": ["oneOf", ["Read", "read"]]},
        "feedFilter.access",
        "'read'",
        ACCESS_LEVELS,
        id="access-oneof-item",
    ),
    pytest.param(
        {"hasUnreadMessages": "yes"},
        "feedFilter.hasUnreadMessages",
        "'yes'",
        "use True or False",
        id="unread-string",
    ),
    pytest.param(
        {"isUnread": 1}, "feedFilter.isUnread", "1", "use True or False", id="unread-number"
    ),
    pytest.param(
        {"subject": "exists"},
        "feedFilter.subject",
        "'exists'",
        f"{FIELD_FORMS.replace(' or ', ', ')}, 'set' or '!set'",
        id="subject-exists",
    ),
    pytest.param(
        {"subject": ["==", 3]}, "feedFilter.subject", "3", "use a string", id="subject-number"
    ),
    pytest.param(
        {"lastMessageTs": ["between", [10, 1]]},
        "feedFilter.lastMessageTs",
        "[10, 1]",
        "use [low, high] with low <= high",
        id="last-between-reversed",
    ),
    pytest.param(
        {"last_message_ts": [">", None]},
        "feedFilter.last_message_ts",
        "None",
        "use a number",
        id="last-none",
    ),
    pytest.param(
        {"created_at": ["between", [0, True]]},
        "feedFilter.created_at",
        "[0, True]",
        RANGE_FORM,
        id="created-bool-bound",
    ),
    pytest.param(
        {"custom": {"a": ["!=", 1]}}, "feedFilter.custom.a", "1", "use a string", id="custom"
    ),
    pytest.param(
        {"custom": "a"},
        "feedFilter.custom",
        "'a'",
        "use an object that maps custom field names to predicates",
        id="custom-not-object",
    ),
]


@pytest.mark.parametrize(
    ("predicate", "path", "bad_value", "remedy"), INVALID_CONVERSATION_PREDICATES
)
def test_invalid_conversation_predicate_rejected(
    predicate: object, path: str, bad_value: str, remedy: str
) -> None:
    _check_invalid(compile_conversation_predicate, predicate, path, bad_value, remedy)


def _check_invalid(
    compile_predicate: Callable[[object], object],
    predicate: object,
    path: str,
    bad_value: str,
    remedy: str,
) -> None:
    """Assert that compiling raises InvalidInput naming ``path``, ``bad_value`` and ``remedy``."""
    with pytest.raises(InvalidInput) as caught:
        compile_predicate(predicate)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert bad_value in message.removeprefix(f"{path}: ")
    assert remedy in message


def test_error_message_full_text() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_message_predicate({"sender": {"id": ["=", "alice"]}})
    assert str(caught.value) == (
        "messageFilter.sender.id: unknown operator '=' in ['=', 'alice']: "
        "use '==', '!=', 'oneOf' or '!oneOf'"
    )
    assert caught.value.code == "invalid_input"
    assert isinstance(caught.value, ValueError)


def test_reversed_range_suggests_fix() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_conversation_predicate({"createdAt": ["between", [9, 1]]})
    assert str(caught.value) == (
        "feedFilter.createdAt: invalid range [9, 1] in ['between', [9, 1]]: "
        "use [low, high] with low <= high, such as [1, 9]"
    )
