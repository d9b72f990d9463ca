"""Seed data of the demo: three users and conversations taken from a public dialogue corpus.

The dialogues come from the ``chatterbot-corpus`` package (BSD licence),
installed with the ``demo`` extra. Seeding runs only on an empty database, so
restarting the demo keeps everything written since. :func:`seed` writes
through the embedded ChatService, and :func:`seed_over_rest` through a chat
server's REST API, for a demo that uses a standalone server.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import NotFound
from ..models import ConversationAttributes, Participation, User
from ..rest import AsyncTalkJSClient
from ..rest.models import (
    MAX_MESSAGES_PER_REQUEST,
    ConversationUpdate,
    NewUserMessage,
    UserUpdate,
)
from ..service import TRUSTED, ChatService
from ..session import one_on_one_id

__all__ = [
    "DEMO_USERS",
    "GROUP_ID",
    "SeedConversation",
    "seed",
    "seed_conversations",
    "seed_over_rest",
]

logger = logging.getLogger("talkjs_components.demo")

GROUP_ID = "demo-group"

DEMO_USERS = (
    User(id="alice", name="Alice", locale="en-US", role="default"),
    User(id="bob", name="Bob", locale="en-GB", role="default"),
    User(id="carol", name="Carol", locale="he-IL", role="default"),
)

MESSAGES_PER_CONVERSATION = 24
"""Upper bound of seeded messages in one conversation."""


@dataclass(frozen=True)
class SeedConversation:
    """A conversation to seed: its participants speak the corpus lines in turn."""

    id: str
    subject: str | None
    user_ids: tuple[str, ...]
    language: str
    corpus_file: str


def seed_conversations() -> list[SeedConversation]:
    """Return the demo's conversations: one group and three one-on-one chats."""
    return [
        SeedConversation(
            GROUP_ID, "Demo group", ("alice", "bob", "carol"), "english", "conversations"
        ),
        SeedConversation(
            one_on_one_id("alice", "bob"), None, ("alice", "bob"), "english", "greetings"
        ),
        SeedConversation(
            one_on_one_id("bob", "carol"), None, ("carol", "bob"), "hebrew", "conversations"
        ),
        SeedConversation(
            one_on_one_id("alice", "carol"), None, ("carol", "alice"), "persian", "greetings"
        ),
    ]


def load_dialogue_lines(language: str, corpus_file: str, limit: int) -> list[str]:
    """Return up to ``limit`` lines of a corpus file's dialogues, in order.

    Raises:
        RuntimeError: The ``demo`` extra (chatterbot-corpus, PyYAML) is not installed.
    """
    try:
        import yaml

        data_root = resources.files("chatterbot_corpus") / "data"
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "the demo needs its extra dependencies: pip install 'talkjs-components[demo]'"
        ) from exc
    source = (data_root / language / f"{corpus_file}.yml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(source)
    lines = (str(line).strip() for dialogue in document["conversations"] for line in dialogue)
    return list(itertools.islice((line for line in lines if line), limit))


async def seed(service: ChatService) -> bool:
    """Write the demo's users and conversations unless they exist; return whether it seeded."""
    try:
        await service.get_conversation(TRUSTED, GROUP_ID)
        return False
    except NotFound:
        pass
    for user in DEMO_USERS:
        await service.upsert_user(user)
    for spec in seed_conversations():
        await _seed_conversation(service, spec)
    logger.info(
        "seeded the demo: %d users, %d conversations", len(DEMO_USERS), len(seed_conversations())
    )
    return True


async def _seed_conversation(service: ChatService, spec: SeedConversation) -> None:
    attributes = ConversationAttributes(subject=spec.subject) if spec.subject else None
    participants = {user_id: Participation() for user_id in spec.user_ids}
    await service.sync_conversation(TRUSTED, spec.id, attributes, participants)
    lines = load_dialogue_lines(spec.language, spec.corpus_file, MESSAGES_PER_CONVERSATION)
    speakers = itertools.cycle(spec.user_ids)
    for number, (line, speaker) in enumerate(zip(lines, speakers, strict=False)):
        await service.send_message(
            TRUSTED, spec.id, line, sender_id=speaker, idempotency_key=f"seed-{number}"
        )
    # Seeded history starts out read, so unread counts only reflect new messages.
    for user_id in spec.user_ids:
        await service.mark_read(user_id, spec.id)


async def seed_over_rest(client: AsyncTalkJSClient) -> bool:
    """Write the demo's data through a server's REST API unless it exists; return whether it seeded.

    The same users, conversations and messages as :func:`seed`. Every
    message has an idempotency key, so a seeding cut short and run again
    stores no message twice.

    Raises:
        RestError: The server rejected a call, for example 401 for a wrong secret key.
        httpx.TransportError: The server cannot be reached.
    """
    try:
        await client.get_conversation(GROUP_ID)
        return False
    except NotFound:
        pass
    await client.upsert_users(
        {
            user.id: UserUpdate(name=user.name, locale=user.locale, role=user.role)
            for user in DEMO_USERS
        }
    )
    for spec in seed_conversations():
        participants = list(spec.user_ids)
        if spec.subject is None:
            update = ConversationUpdate(participants=participants)
        else:
            update = ConversationUpdate(participants=participants, subject=spec.subject)
        await client.upsert_conversation(spec.id, update)
        lines = load_dialogue_lines(spec.language, spec.corpus_file, MESSAGES_PER_CONVERSATION)
        speakers = itertools.cycle(spec.user_ids)
        messages = [
            NewUserMessage(text=line, sender=speaker, idempotency_key=f"seed-{number}")
            for number, (line, speaker) in enumerate(zip(lines, speakers, strict=False))
        ]
        for start in range(0, len(messages), MAX_MESSAGES_PER_REQUEST):
            await client.send_messages(spec.id, messages[start : start + MAX_MESSAGES_PER_REQUEST])
        for user_id in spec.user_ids:
            await client.mark_read(spec.id, user_id)
    logger.info(
        "seeded the demo over the REST API: %d users, %d conversations",
        len(DEMO_USERS),
        len(seed_conversations()),
    )
    return True
