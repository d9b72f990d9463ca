"""Clients of TalkJS REST API v1: :class:`TalkJSClient` (blocking) and :class:`AsyncTalkJSClient`.

They talk to this package's standalone server (``talkjs-components serve``)
or to TalkJS's hosted API, whichever ``base_url`` names::

    from talkjs_components.rest import TalkJSClient, UserUpdate

    with TalkJSClient("my-app", SECRET_KEY, base_url="http://127.0.0.1:8080") as client:
        client.upsert_user("alice", UserUpdate(name="Alice"))
        for user in client.iter_users():
            print(user.id, user.name)
"""

from __future__ import annotations

from .client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    AsyncTalkJSClient,
    TalkJSClient,
)
from .errors import (
    RestBadRequest,
    RestError,
    RestForbidden,
    RestNotFound,
    RestPayloadTooLarge,
    RestRateLimited,
    RestServerError,
    RestUnauthorized,
)
from .models import (
    ConversationUpdate,
    NewSystemMessage,
    NewUserMessage,
    RestConversation,
    RestMessage,
    RestParticipant,
    RestUser,
    RestUserConversation,
    UserUpdate,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_WAIT",
    "AsyncTalkJSClient",
    "ConversationUpdate",
    "NewSystemMessage",
    "NewUserMessage",
    "RestBadRequest",
    "RestConversation",
    "RestError",
    "RestForbidden",
    "RestMessage",
    "RestNotFound",
    "RestParticipant",
    "RestPayloadTooLarge",
    "RestRateLimited",
    "RestServerError",
    "RestUnauthorized",
    "RestUser",
    "RestUserConversation",
    "TalkJSClient",
    "UserUpdate",
]
