"""Sync and async clients of TalkJS REST API v1, for this package's server or TalkJS's.

Both clients have the same methods; the async ones are coroutines. Every
method sends one request, except the ``iter_*`` methods, which page through
a list with ``limit`` and ``startingAfter`` until a short page. An error
status raises a :class:`~talkjs_components.rest.errors.RestError` subclass
carrying the status and the ``errorCode``. A 429 (and a 503 with
``Retry-After``) is retried after the wait in its ``Retry-After`` header, at
most ``max_retries`` times and only when that wait is at most
``max_retry_wait`` seconds. Otherwise it raises. Network failures raise
httpx's exceptions unchanged.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import ValidationError

from ..auth import App, create_app_token
from ..models import AccessLevel
from . import _requests
from ._requests import Request
from .errors import RestError, error_from_response
from .models import (
    ConversationUpdate,
    MessageUpdate,
    NewSystemMessage,
    NewUserMessage,
    Notify,
    ParticipantJoin,
    ParticipantUpdate,
    RestConversation,
    RestMessage,
    RestUser,
    RestUserConversation,
    UserUpdate,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_WAIT",
    "AsyncTalkJSClient",
    "TalkJSClient",
]

DEFAULT_BASE_URL = "https://api.talkjs.com"
"""TalkJS's hosted REST API; pass this package's server URL as ``base_url`` instead."""

DEFAULT_MAX_RETRIES = 2
"""Retries of one call after a 429 (or a 503 with ``Retry-After``)."""

DEFAULT_MAX_RETRY_WAIT = 60.0
"""Longest ``Retry-After``, in seconds, that a call waits for before it retries."""

_RETRY_STATUSES = frozenset({429, 503})
_T = TypeVar("_T")
_Item = TypeVar("_Item", RestUser, RestConversation, RestUserConversation, RestMessage)


class _ClientBase:
    """Credentials, URLs, retry rules and response reading shared by both clients."""

    def __init__(
        self,
        app_id: str,
        secret_key: str,
        *,
        base_url: str,
        use_app_tokens: bool,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        self.app_id = app_id
        self.base_url = f"{base_url.rstrip('/')}/v1/{_requests.quote_segment(app_id)}"
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._secret_key = secret_key
        # Validated now, so that a short key fails here rather than on the first call.
        self._app = App(app_id, secret_key=secret_key) if use_app_tokens else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(app_id={self.app_id!r}, base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        credential = self._secret_key if self._app is None else create_app_token(self._app)
        return {"Authorization": f"Bearer {credential}", "Accept": "application/json"}

    def _url(self, request: Request[Any]) -> str:
        return self.base_url + request.path

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Return the seconds to wait before retrying ``response``, or ``None`` to raise."""
        if response.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
            return None
        wait = _retry_after(response)
        if wait is None:
            if response.status_code != 429:
                return None
            wait = 1.0
        return wait if wait <= self.max_retry_wait else None

    def _read(self, request: Request[_T], response: httpx.Response) -> _T:
        if response.status_code >= 400:
            raise error_from_response(response, _retry_after(response))
        try:
            return request.read(response.json() if response.content else {})
        except (ValueError, ValidationError) as exc:
            raise RestError(
                response.status_code,
                "invalid_response",
                f"the response to {request.method} {request.path} is not what the API "
                f"describes: {exc}",
            ) from exc


def _retry_after(response: httpx.Response) -> float | None:
    """Return the ``Retry-After`` header in seconds: a number, or an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _join(access: AccessLevel | None, notify: Notify | None) -> ParticipantJoin:
    fields: dict[str, object] = {}
    if access is not None:
        fields["access"] = access
    if notify is not None:
        fields["notify"] = notify
    return ParticipantJoin.model_validate(fields)


def _participant_update(access: str | None, notify: Notify | None) -> ParticipantUpdate:
    fields: dict[str, object] = {}
    if access is not None:
        fields["access"] = access
    if notify is not None:
        fields["notify"] = notify
    return ParticipantUpdate.model_validate(fields)


def _message_update(text: str | None, custom: Mapping[str, str | None] | None) -> MessageUpdate:
    fields: dict[str, object] = {}
    if text is not None:
        fields["text"] = text
    if custom is not None:
        fields["custom"] = dict(custom)
    return MessageUpdate.model_validate(fields)


class TalkJSClient(_ClientBase):
    """A blocking client of REST API v1 for one app.

    Args:
        app_id: The app whose data to read and write.
        secret_key: The app's secret key. It is sent as the bearer credential,
            or with ``use_app_tokens`` signs a 30-second app token per request,
            so that the key itself never travels.
        base_url: The server, without ``/v1``; TalkJS's hosted API by default.
        use_app_tokens: Whether to authenticate with app tokens. The key must
            then be at least ``auth.MIN_SECRET_KEY_LENGTH`` characters.
        timeout: Seconds for each HTTP request.
        max_retries: Retries after a 429, as described in the module docstring.
        max_retry_wait: Longest ``Retry-After`` to wait for, in seconds.
        http_client: An httpx client to send with; the client then leaves it
            open. By default the client makes its own and closes it on ``close()``.

    Not safe for use from several threads at once.
    """

    def __init__(
        self,
        app_id: str,
        secret_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        use_app_tokens: bool = False,
        timeout: float = 10.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            app_id,
            secret_key,
            base_url=base_url,
            use_app_tokens=use_app_tokens,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._owns_http_client = http_client is None
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections, unless the httpx client was passed in."""
        if self._owns_http_client:
            self._http.close()

    def _send(self, request: Request[_T]) -> _T:
        attempt = 0
        while True:
            response = self._http.request(
                request.method,
                self._url(request),
                params=request.params,
                json=request.body,
                headers=self._headers(),
            )
            wait = self._retry_wait(response, attempt)
            if wait is None:
                return self._read(request, response)
            attempt += 1
            time.sleep(wait)

    # Users

    def upsert_user(self, user_id: str, user: UserUpdate) -> None:
        """Create or update a user; fields not set in ``user`` are kept, ``None`` deletes."""
        self._send(_requests.put_user(user_id, user))

    def upsert_users(self, users: Mapping[str, UserUpdate]) -> None:
        """Create or update up to 100 users, all or none; ``errors`` of a 400 names each."""
        self._send(_requests.put_users(users))

    def get_user(self, user_id: str) -> RestUser:
        """Return a user."""
        return self._send(_requests.get_user(user_id))

    def list_users(self, *, limit: int = 10, starting_after: str | None = None) -> list[RestUser]:
        """Return one page of users."""
        return self._send(_requests.list_users(limit, starting_after))

    def iter_users(self, *, page_size: int = 100) -> Iterator[RestUser]:
        """Yield every user, fetching pages of ``page_size``."""
        return _pages(
            lambda after: self.list_users(limit=page_size, starting_after=after), page_size
        )

    def list_user_conversations(
        self,
        user_id: str,
        *,
        limit: int = 10,
        starting_after: str | None = None,
        unreads_only: bool = False,
    ) -> list[RestUserConversation]:
        """Return one page of a user's conversations, most recent activity first."""
        return self._send(
            _requests.list_user_conversations(user_id, limit, starting_after, unreads_only)
        )

    def iter_user_conversations(
        self, user_id: str, *, unreads_only: bool = False, page_size: int = 100
    ) -> Iterator[RestUserConversation]:
        """Yield every conversation of a user, fetching pages of ``page_size``."""
        return _pages(
            lambda after: self.list_user_conversations(
                user_id, limit=page_size, starting_after=after, unreads_only=unreads_only
            ),
            page_size,
        )

    # Conversations and participants

    def upsert_conversation(self, conversation_id: str, conversation: ConversationUpdate) -> None:
        """Create or update a conversation and add its ``participants``, removing none."""
        self._send(_requests.put_conversation(conversation_id, conversation))

    def get_conversation(self, conversation_id: str) -> RestConversation:
        """Return a conversation with its participants and latest message."""
        return self._send(_requests.get_conversation(conversation_id))

    def list_conversations(
        self, *, limit: int = 10, starting_after: str | None = None
    ) -> list[RestConversation]:
        """Return one page of the app's conversations."""
        return self._send(_requests.list_conversations(limit, starting_after))

    def iter_conversations(self, *, page_size: int = 100) -> Iterator[RestConversation]:
        """Yield every conversation of the app, fetching pages of ``page_size``."""
        return _pages(
            lambda after: self.list_conversations(limit=page_size, starting_after=after),
            page_size,
        )

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its messages, for good."""
        self._send(_requests.delete_conversation(conversation_id))

    def mark_read(self, conversation_id: str, user_id: str) -> None:
        """Mark the conversation read up to its latest message for ``user_id``."""
        self._send(_requests.mark_read(conversation_id, user_id))

    def add_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        access: AccessLevel | None = None,
        notify: Notify | None = None,
    ) -> None:
        """Add a user to a conversation or overwrite their settings (defaults: ReadWrite, True)."""
        self._send(_requests.put_participant(conversation_id, user_id, _join(access, notify)))

    def update_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        access: str | None = None,
        notify: Notify | None = None,
    ) -> None:
        """Change a participant's settings; ``access="None"`` removes them."""
        update = _participant_update(access, notify)
        self._send(_requests.patch_participant(conversation_id, user_id, update))

    def remove_participant(self, conversation_id: str, user_id: str) -> None:
        """Remove a participant from a conversation."""
        self._send(_requests.delete_participant(conversation_id, user_id))

    # Messages

    def list_messages(
        self, conversation_id: str, *, limit: int = 10, starting_after: str | None = None
    ) -> list[RestMessage]:
        """Return one page of messages, newest first."""
        return self._send(_requests.list_messages(conversation_id, limit, starting_after))

    def iter_messages(self, conversation_id: str, *, page_size: int = 100) -> Iterator[RestMessage]:
        """Yield every message of a conversation, newest first, fetching pages of ``page_size``."""
        return _pages(
            lambda after: self.list_messages(
                conversation_id, limit=page_size, starting_after=after
            ),
            page_size,
        )

    def get_message(self, conversation_id: str, message_id: str) -> RestMessage:
        """Return a message."""
        return self._send(_requests.get_message(conversation_id, message_id))

    def send_messages(
        self, conversation_id: str, messages: Sequence[NewUserMessage | NewSystemMessage]
    ) -> list[str]:
        """Send up to 10 messages and return their ids (empty when the server sends none)."""
        return self._send(_requests.post_messages(conversation_id, messages))

    def edit_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None = None,
        custom: Mapping[str, str | None] | None = None,
    ) -> None:
        """Change a message's text or ``custom``; a ``custom`` key set to ``None`` is removed."""
        update = _message_update(text, custom)
        self._send(_requests.put_message(conversation_id, message_id, update))

    def delete_message(self, conversation_id: str, message_id: str) -> None:
        """Delete a message."""
        self._send(_requests.delete_message(conversation_id, message_id))


class AsyncTalkJSClient(_ClientBase):
    """The asyncio twin of :class:`TalkJSClient`: the same arguments and methods, as coroutines.

    The ``iter_*`` methods return async iterators. Cancelling a call is safe:
    the request may or may not have reached the server, as with any
    cancelled HTTP request.
    """

    def __init__(
        self,
        app_id: str,
        secret_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        use_app_tokens: bool = False,
        timeout: float = 10.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            app_id,
            secret_key,
            base_url=base_url,
            use_app_tokens=use_app_tokens,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._owns_http_client = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connections, unless the httpx client was passed in."""
        if self._owns_http_client:
            await self._http.aclose()

    async def _send(self, request: Request[_T]) -> _T:
        attempt = 0
        while True:
            response = await self._http.request(
                request.method,
                self._url(request),
                params=request.params,
                json=request.body,
                headers=self._headers(),
            )
            wait = self._retry_wait(response, attempt)
            if wait is None:
                return self._read(request, response)
            attempt += 1
            await asyncio.sleep(wait)

    # Users

    async def upsert_user(self, user_id: str, user: UserUpdate) -> None:
        """Create or update a user; fields not set in ``user`` are kept, ``None`` deletes."""
        await self._send(_requests.put_user(user_id, user))

    async def upsert_users(self, users: Mapping[str, UserUpdate]) -> None:
        """Create or update up to 100 users, all or none; ``errors`` of a 400 names each."""
        await self._send(_requests.put_users(users))

    async def get_user(self, user_id: str) -> RestUser:
        """Return a user."""
        return await self._send(_requests.get_user(user_id))

    async def list_users(
        self, *, limit: int = 10, starting_after: str | None = None
    ) -> list[RestUser]:
        """Return one page of users."""
        return await self._send(_requests.list_users(limit, starting_after))

    def iter_users(self, *, page_size: int = 100) -> AsyncIterator[RestUser]:
        """Yield every user, fetching pages of ``page_size``."""
        return _async_pages(
            lambda after: self.list_users(limit=page_size, starting_after=after), page_size
        )

    async def list_user_conversations(
        self,
        user_id: str,
        *,
        limit: int = 10,
        starting_after: str | None = None,
        unreads_only: bool = False,
    ) -> list[RestUserConversation]:
        """Return one page of a user's conversations, most recent activity first."""
        return await self._send(
            _requests.list_user_conversations(user_id, limit, starting_after, unreads_only)
        )

    def iter_user_conversations(
        self, user_id: str, *, unreads_only: bool = False, page_size: int = 100
    ) -> AsyncIterator[RestUserConversation]:
        """Yield every conversation of a user, fetching pages of ``page_size``."""
        return _async_pages(
            lambda after: self.list_user_conversations(
                user_id, limit=page_size, starting_after=after, unreads_only=unreads_only
            ),
            page_size,
        )

    # Conversations and participants

    async def upsert_conversation(
        self, conversation_id: str, conversation: ConversationUpdate
    ) -> None:
        """Create or update a conversation and add its ``participants``, removing none."""
        await self._send(_requests.put_conversation(conversation_id, conversation))

    async def get_conversation(self, conversation_id: str) -> RestConversation:
        """Return a conversation with its participants and latest message."""
        return await self._send(_requests.get_conversation(conversation_id))

    async def list_conversations(
        self, *, limit: int = 10, starting_after: str | None = None
    ) -> list[RestConversation]:
        """Return one page of the app's conversations."""
        return await self._send(_requests.list_conversations(limit, starting_after))

    def iter_conversations(self, *, page_size: int = 100) -> AsyncIterator[RestConversation]:
        """Yield every conversation of the app, fetching pages of ``page_size``."""
        return _async_pages(
            lambda after: self.list_conversations(limit=page_size, starting_after=after),
            page_size,
        )

    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its messages, for good."""
        await self._send(_requests.delete_conversation(conversation_id))

    async def mark_read(self, conversation_id: str, user_id: str) -> None:
        """Mark the conversation read up to its latest message for ``user_id``."""
        await self._send(_requests.mark_read(conversation_id, user_id))

    async def add_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        access: AccessLevel | None = None,
        notify: Notify | None = None,
    ) -> None:
        """Add a user to a conversation or overwrite their settings (defaults: ReadWrite, True)."""
        await self._send(_requests.put_participant(conversation_id, user_id, _join(access, notify)))

    async def update_participant(
        self,
        conversation_id: str,
        user_id: str,
        *,
        access: str | None = None,
        notify: Notify | None = None,
    ) -> None:
        """Change a participant's settings; ``access="None"`` removes them."""
        update = _participant_update(access, notify)
        await self._send(_requests.patch_participant(conversation_id, user_id, update))

    async def remove_participant(self, conversation_id: str, user_id: str) -> None:
        """Remove a participant from a conversation."""
        await self._send(_requests.delete_participant(conversation_id, user_id))

    # Messages

    async def list_messages(
        self, conversation_id: str, *, limit: int = 10, starting_after: str | None = None
    ) -> list[RestMessage]:
        """Return one page of messages, newest first."""
        return await self._send(_requests.list_messages(conversation_id, limit, starting_after))

    def iter_messages(
        self, conversation_id: str, *, page_size: int = 100
    ) -> AsyncIterator[RestMessage]:
        """Yield every message of a conversation, newest first, fetching pages of ``page_size``."""
        return _async_pages(
            lambda after: self.list_messages(
                conversation_id, limit=page_size, starting_after=after
            ),
            page_size,
        )

    async def get_message(self, conversation_id: str, message_id: str) -> RestMessage:
        """Return a message."""
        return await self._send(_requests.get_message(conversation_id, message_id))

    async def send_messages(
        self, conversation_id: str, messages: Sequence[NewUserMessage | NewSystemMessage]
    ) -> list[str]:
        """Send up to 10 messages and return their ids (empty when the server sends none)."""
        return await self._send(_requests.post_messages(conversation_id, messages))

    async def edit_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None = None,
        custom: Mapping[str, str | None] | None = None,
    ) -> None:
        """Change a message's text or ``custom``; a ``custom`` key set to ``None`` is removed."""
        update = _message_update(text, custom)
        await self._send(_requests.put_message(conversation_id, message_id, update))

    async def delete_message(self, conversation_id: str, message_id: str) -> None:
        """Delete a message."""
        await self._send(_requests.delete_message(conversation_id, message_id))


def _pages(fetch: Callable[[str | None], list[_Item]], page_size: int) -> Iterator[_Item]:
    """Yield the items of every page; a page shorter than ``page_size`` is the last."""
    after: str | None = None
    while True:
        page = fetch(after)
        yield from page
        if len(page) < page_size:
            return
        after = page[-1].id


async def _async_pages(
    fetch: Callable[[str | None], Awaitable[list[_Item]]], page_size: int
) -> AsyncIterator[_Item]:
    """Yield the items of every page, like :func:`_pages`."""
    after: str | None = None
    while True:
        page = await fetch(after)
        for item in page:
            yield item
        if len(page) < page_size:
            return
        after = page[-1].id
