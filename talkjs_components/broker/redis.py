"""Redis broker: carries chat events between the server nodes of a cluster.

It uses Redis pub/sub, which delivers each payload at most once, to the
subscribers connected when it is published. Pub/sub keeps nothing, so a node
whose connection drops misses what is published until it has subscribed again.
The chat service does not need more: every event a user can see is already
stored in the durable event log, and the service reads the events a node
missed from there. docs/broker.md explains how, and why streams were not
used.

Every channel and key name starts with ``prefix:``, so several deployments,
or tests, can share one Redis server.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import re
import uuid
from collections.abc import Callable

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..errors import BrokerError, InvalidInput
from ..redaction import redact_url
from .redis_presence import RedisPresenceTracker

__all__ = ["RedisBroker", "RedisSubscription", "describe_url"]

logger = logging.getLogger(__name__)

# Errors of redis-py (connection, timeout, protocol) and of the socket below it.
_REDIS_ERRORS = (RedisError, OSError)

# Redis client names may not contain spaces, and presence key names rely on
# node ids (the broker id and a number) without ':'.
_BROKER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class _ConnectionLost(RedisError):
    """The subscriber connection stopped replying to PING."""


class RedisSubscription:
    """Handle of one :class:`RedisBroker` subscription."""

    def __init__(
        self,
        broker: RedisBroker,
        channel: str,
        callback: Callable[[bytes], None],
        on_resubscribed: Callable[[], None] | None,
    ) -> None:
        self._broker = broker
        self.channel = channel
        """The channel name without the broker's prefix."""
        self._callback = callback
        self._on_resubscribed = on_resubscribed
        self.active = True

    async def unsubscribe(self) -> None:
        """Stop delivery, including payloads received but not yet delivered.

        Calling it again does nothing.
        """
        await self._broker._remove(self)

    def _deliver(self, payload: bytes) -> None:
        if not self.active:
            return
        try:
            self._callback(payload)
        except Exception:
            # Another subscriber's failure must not stop delivery to the rest.
            logger.exception(
                "subscriber callback on channel %r raised; delivery to other subscribers continues",
                self.channel,
            )

    def _resubscribed(self) -> None:
        if not self.active or self._on_resubscribed is None:
            return
        try:
            self._on_resubscribed()
        except Exception:
            logger.exception("resubscribe callback on channel %r raised", self.channel)


class RedisBroker:
    """Broker on a Redis server, for the nodes of a cluster.

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://`` for
            TLS, as redis-py's ``Redis.from_url`` reads it.
        prefix: Start of every channel and key name, followed by ``:``.
            Deployments that share a Redis server need different prefixes;
            the nodes of one deployment need the same one.
        broker_id: Name of this broker in logs and in Redis's client list;
            12 random hex digits when omitted.
        connect_timeout: Seconds to wait for a connection to Redis.
        command_timeout: Seconds to wait for a reply to a command, including
            the confirmation of a new subscription.
        reconnect_delay: Seconds before the first attempt to reconnect the
            subscriber connection; each failed attempt doubles it.
        max_reconnect_delay: Cap of the delay between reconnect attempts, in seconds.
        ping_interval: Seconds of silence on the subscriber connection after
            which the broker sends PING; no reply within as long again counts
            as a lost connection.
        presence_ttl: Seconds after its last heartbeat at which a node counts
            as stopped and its users as offline.
        heartbeat_interval: Seconds between a node's presence heartbeats;
            a third of ``presence_ttl`` when omitted.

    Each broker has two connections: one for PUBLISH and the presence
    commands (redis-py's pool, reconnected on demand), and one subscriber
    connection. When the subscriber connection drops, a background task
    reconnects it with a capped, jittered exponential backoff, logging every
    attempt with the broker id, subscribes again to every channel, and then
    calls each subscription's ``on_resubscribed``.

    ``publish`` and ``subscribe`` raise ``RuntimeError`` before ``start()``
    and after ``close()``. The broker can be started again after ``close()``.

    Raises:
        InvalidInput: ``prefix`` is empty or contains whitespace, ``broker_id``
            has other characters than letters, digits, ``.``, ``_`` and ``-``,
            a time is not positive, or ``heartbeat_interval`` is not below
            ``presence_ttl``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "talkjs",
        broker_id: str | None = None,
        connect_timeout: float = 5.0,
        command_timeout: float = 5.0,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        ping_interval: float = 5.0,
        presence_ttl: float = 30.0,
        heartbeat_interval: float | None = None,
    ) -> None:
        if broker_id is not None and not _BROKER_ID.fullmatch(broker_id):
            raise InvalidInput(
                f"broker id {broker_id!r} is invalid: use 1 to 64 letters, digits, '.', '_' "
                "or '-', because it names Redis connections and presence keys"
            )
        if not prefix or any(character.isspace() for character in prefix):
            raise InvalidInput(
                f"Redis key prefix {prefix!r} is invalid: use a non-empty name without "
                "whitespace, such as 'talkjs' or 'chat-production'"
            )
        if heartbeat_interval is None:
            heartbeat_interval = presence_ttl / 3

        times = {
            "connect_timeout": connect_timeout,
            "command_timeout": command_timeout,
            "reconnect_delay": reconnect_delay,
            "max_reconnect_delay": max_reconnect_delay,
            "ping_interval": ping_interval,
            "presence_ttl": presence_ttl,
            "heartbeat_interval": heartbeat_interval,
        }
        for name, seconds in times.items():
            if not seconds > 0:
                raise InvalidInput(f"{name} {seconds!r} is not positive: pass a time in seconds")
        if heartbeat_interval >= presence_ttl:
            raise InvalidInput(
                f"heartbeat_interval {heartbeat_interval} s is not below presence_ttl "
                f"{presence_ttl} s, so a live node would expire between heartbeats: use a "
                "third of presence_ttl or less"
            )

        self._url = url
        self._prefix = prefix
        self.broker_id = broker_id or uuid.uuid4().hex[:12]
        """Name of this broker in logs and in Redis's client list."""
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._ping_interval = ping_interval
        self._presence_ttl = presence_ttl
        self._heartbeat_interval = heartbeat_interval

        self._client: redis.Redis | None = None
        self._subscriber_client: redis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        # Subscriptions by full channel name (with the prefix).
        self._subscriptions: dict[str, list[RedisSubscription]] = {}
        # Full channel names that Redis confirmed on the current subscriber
        # connection, and those whose SUBSCRIBE was sent but not yet confirmed.
        self._confirmed: set[str] = set()
        self._requested: set[str] = set()
        # Futures of subscribe() calls waiting for a confirmation, by full channel name.
        self._confirmations: dict[str, list[asyncio.Future[None]]] = {}
        # Whether the subscriber connection is up; while it is down, subscribe()
        # only registers, and the reconnect subscribes to every channel.
        self._connected = False
        self._tracker_numbers = itertools.count(1)

    @property
    def prefix(self) -> str:
        """Start of every channel and key name of this broker."""
        return self._prefix

    @property
    def client_name(self) -> str:
        """Name of the broker's command connections in Redis's ``CLIENT LIST``."""
        return f"talkjs-broker-{self.broker_id}"

    @property
    def subscriber_client_name(self) -> str:
        """Name of the broker's subscriber connection in Redis's ``CLIENT LIST``."""
        return f"talkjs-broker-{self.broker_id}-subscriber"

    @property
    def where(self) -> str:
        """The Redis URL with the password replaced by ``***``, for messages."""
        return describe_url(self._url)

    def key(self, name: str) -> str:
        """Return the full Redis name of a channel or key: the prefix, ``:`` and ``name``."""
        return f"{self._prefix}:{name}"

    # Lifecycle

    async def start(self) -> None:
        """Connect to Redis and start the task that reads the subscriber connection.

        Raises:
            RuntimeError: the broker is already started.
            BrokerError: Redis cannot be reached; the message names the URL.
        """
        if self._client is not None:
            raise RuntimeError(f"Redis broker {self.broker_id} is already started")
        client = redis.Redis.from_url(
            self._url,
            client_name=self.client_name,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._command_timeout,
        )
        # No retries or reconnects inside redis-py on this connection (no
        # error is "supported" for retrying): the reader task reconnects
        # itself, so that it can log, back off and report the gap.
        subscriber_client = redis.Redis.from_url(
            self._url,
            client_name=self.subscriber_client_name,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=self._command_timeout,
            retry=Retry(NoBackoff(), 0, supported_errors=()),
        )
        pubsub = subscriber_client.pubsub()
        try:
            await client.ping()
            # Connects the subscriber connection; the reader task reads the PONG.
            await pubsub.ping()
        except _REDIS_ERRORS as exc:
            await _close_quietly(pubsub, subscriber_client, client)
            raise BrokerError(
                f"Redis broker {self.broker_id} cannot connect to {self.where}: "
                f"{_describe_error(exc)}; start Redis or correct the broker URL"
            ) from exc
        self._client = client
        self._subscriber_client = subscriber_client
        self._pubsub = pubsub
        self._connected = True
        self._reader = asyncio.get_running_loop().create_task(
            self._read_subscriber_connection(pubsub),
            name=f"talkjs-redis-broker-{self.broker_id}",
        )
        self._reader.add_done_callback(self._log_reader_failure)
        logger.info(
            "Redis broker %s connected to %s with prefix %r",
            self.broker_id,
            self.where,
            self._prefix,
        )

    async def close(self) -> None:
        """Drop every subscription and close the connections.

        Payloads received but not yet delivered are discarded. Calling it
        again, or before ``start()``, does nothing.
        """
        client, self._client = self._client, None
        if client is None:
            return
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.active = False
        self._subscriptions.clear()
        for futures in self._confirmations.values():
            for future in futures:
                future.cancel()
        self._confirmations.clear()
        self._confirmed.clear()
        self._requested.clear()
        self._connected = False
        pubsub, self._pubsub = self._pubsub, None
        subscriber_client, self._subscriber_client = self._subscriber_client, None
        await _close_quietly(pubsub, subscriber_client, client)
        logger.info("Redis broker %s closed its connections to %s", self.broker_id, self.where)

    # Publishing and subscribing

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send ``payload`` to the subscribers of ``channel`` on every node.

        Raises:
            RuntimeError: the broker is not started.
            BrokerError: Redis failed or cannot be reached.
        """
        client = self._require_started()
        try:
            await client.publish(self.key(channel), payload)
        except _REDIS_ERRORS as exc:
            raise BrokerError(
                f"Redis broker {self.broker_id} failed to publish {len(payload)} bytes on "
                f"channel {channel!r} to {self.where}: {_describe_error(exc)}"
            ) from exc

    async def subscribe(
        self,
        channel: str,
        callback: Callable[[bytes], None],
        *,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> RedisSubscription:
        """Call ``callback`` on the event loop with each payload published on ``channel``.

        Returns once Redis has confirmed the subscription, so every payload
        published afterwards is delivered. Callbacks run on the broker's
        reader task, one payload at a time, in the order Redis sent them.
        ``on_resubscribed`` is called after a lost subscriber connection was
        restored, because payloads published in between were dropped.

        Raises:
            RuntimeError: the broker is not started.
            BrokerError: Redis did not confirm the subscription within
                ``command_timeout``; nothing stays subscribed.
        """
        self._require_started()
        full_channel = self.key(channel)
        subscription = RedisSubscription(self, channel, callback, on_resubscribed)
        self._subscriptions.setdefault(full_channel, []).append(subscription)
        if full_channel in self._confirmed:
            return subscription
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(full_channel, []).append(confirmed)
        if self._connected and full_channel not in self._requested:
            self._requested.add(full_channel)
            assert self._pubsub is not None
            try:
                await self._pubsub.subscribe(full_channel)
            except _REDIS_ERRORS:
                # The reader task sees the broken connection too and subscribes
                # again after reconnecting, which confirms this subscription.
                logger.debug(
                    "Redis broker %s could not send SUBSCRIBE %r; it subscribes on reconnect",
                    self.broker_id,
                    full_channel,
                )
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), self._command_timeout)
        except TimeoutError as exc:
            await self._remove(subscription)
            raise BrokerError(
                f"Redis broker {self.broker_id} could not subscribe to channel {channel!r}: "
                f"{self.where} did not confirm within {self._command_timeout} s; check that "
                "Redis is running and reachable"
            ) from exc
        return subscription

    def presence_tracker(self, app_id: str) -> RedisPresenceTracker:
        """Create the presence tracker of ``app_id`` for this node, stored in this Redis.

        Each tracker is a node of its own, named after the broker id, so two
        services of one app on one broker count as two nodes.
        """
        node_id = f"{self.broker_id}-{next(self._tracker_numbers)}"
        return RedisPresenceTracker(
            self,
            app_id,
            node_id,
            ttl=self._presence_ttl,
            heartbeat_interval=self._heartbeat_interval,
        )

    def command_client(self) -> redis.Redis:
        """Return the client for commands other than subscribing, for the presence tracker.

        Raises:
            BrokerError: the broker is not started or already closed.
        """
        if self._client is None:
            raise BrokerError(
                f"Redis broker {self.broker_id} is not running: start it before its "
                "presence trackers, and close them before it"
            )
        return self._client

    async def _remove(self, subscription: RedisSubscription) -> None:
        subscription.active = False
        full_channel = self.key(subscription.channel)
        subscriptions = self._subscriptions.get(full_channel)
        if subscriptions is None or subscription not in subscriptions:
            return
        subscriptions.remove(subscription)
        if subscriptions:
            return
        del self._subscriptions[full_channel]
        was_subscribed = full_channel in self._confirmed or full_channel in self._requested
        self._confirmed.discard(full_channel)
        self._requested.discard(full_channel)
        if not (was_subscribed and self._connected and self._pubsub is not None):
            return
        try:
            await self._pubsub.unsubscribe(full_channel)
        except _REDIS_ERRORS:
            # The reconnect subscribes only to channels that have subscribers.
            logger.debug(
                "Redis broker %s could not send UNSUBSCRIBE %r; the reconnect drops it",
                self.broker_id,
                full_channel,
            )

    def _require_started(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError(
                f"Redis broker {self.broker_id} is not started: call await broker.start() first"
            )
        return self._client

    # The subscriber connection

    async def _read_subscriber_connection(self, pubsub: PubSub) -> None:
        """Deliver payloads until the broker closes, reconnecting whenever the connection drops."""
        while True:
            try:
                await self._receive(pubsub)
            except _REDIS_ERRORS as exc:
                self._connected = False
                self._confirmed.clear()
                self._requested.clear()
                await _close_quietly(pubsub)
                pubsub = await self._reconnect(exc)
                self._pubsub = pubsub
                self._connected = True
                for subscriptions in list(self._subscriptions.values()):
                    for subscription in list(subscriptions):
                        subscription._resubscribed()

    def _log_reader_failure(self, reader: asyncio.Task[None]) -> None:
        if reader.cancelled() or reader.exception() is None:
            return
        # Only a bug gets here: Redis errors make the task reconnect.
        logger.error(
            "Redis broker %s stopped reading its subscriber connection; no payloads are "
            "delivered until it is restarted",
            self.broker_id,
            exc_info=reader.exception(),
        )

    async def _receive(self, pubsub: PubSub) -> None:
        """Read messages from ``pubsub`` until the connection fails, which raises."""
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            now = loop.time()
            if message is None:
                silent = now - last_heard
                if silent >= 2 * self._ping_interval:
                    raise _ConnectionLost(f"no reply to PING within {silent:.1f} s")
                if silent >= self._ping_interval:
                    await pubsub.ping()
                continue
            last_heard = now
            self._handle(message)

    def _handle(self, message: dict[str, object]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if not isinstance(channel, bytes):
            # A PONG, which carries no channel.
            return
        full_channel = channel.decode()
        if kind == "message":
            data = message["data"]
            assert isinstance(data, bytes)
            for subscription in list(self._subscriptions.get(full_channel, ())):
                subscription._deliver(data)
        elif kind == "subscribe":
            self._confirm(full_channel)

    def _confirm(self, full_channel: str) -> None:
        self._requested.discard(full_channel)
        if full_channel not in self._subscriptions:
            # Unsubscribed while the confirmation was on its way.
            return
        self._confirmed.add(full_channel)
        for future in self._confirmations.pop(full_channel, ()):
            if not future.done():
                future.set_result(None)

    async def _reconnect(self, error: BaseException) -> PubSub:
        """Open a new subscriber connection and subscribe again, retrying until it works."""
        assert self._subscriber_client is not None
        for attempt in itertools.count(1):
            delay = min(self._max_reconnect_delay, self._reconnect_delay * 2 ** (attempt - 1))
            # Jitter spreads the reconnects of many nodes after a Redis restart.
            delay *= random.uniform(0.5, 1.0)
            logger.warning(
                "Redis broker %s lost its subscriber connection to %s (%s); "
                "reconnecting in %.2f s, attempt %d",
                self.broker_id,
                self.where,
                _describe_error(error),
                delay,
                attempt,
            )
            await asyncio.sleep(delay)
            pubsub = self._subscriber_client.pubsub()
            try:
                # PING connects, so a Redis that is still down fails here even
                # when there is no channel to subscribe to.
                await pubsub.ping()
                await self._subscribe_all(pubsub)
            except _REDIS_ERRORS as exc:
                error = exc
                await _close_quietly(pubsub)
                continue
            logger.info(
                "Redis broker %s reconnected to %s after %d attempts and subscribed to "
                "%d channels again",
                self.broker_id,
                self.where,
                attempt,
                len(self._confirmed),
            )
            return pubsub
        raise AssertionError("unreachable: itertools.count never ends")

    async def _subscribe_all(self, pubsub: PubSub) -> None:
        """Subscribe ``pubsub`` to every channel with subscribers and wait for the confirmations.

        Channels that get their first subscriber meanwhile are subscribed too.
        Payloads that arrive between the confirmations are delivered.
        """
        loop = asyncio.get_running_loop()
        self._confirmed.clear()
        self._requested.clear()
        while missing := [name for name in self._subscriptions if name not in self._confirmed]:
            await pubsub.subscribe(*missing)
            self._requested.update(missing)
            deadline = loop.time() + self._command_timeout
            while any(name in self._requested for name in missing):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise _ConnectionLost(
                        f"SUBSCRIBE was not confirmed within {self._command_timeout} s"
                    )
                message = await pubsub.get_message(timeout=remaining)
                if message is not None:
                    self._handle(message)


async def _close_quietly(pubsub: PubSub | None, *clients: redis.Redis | None) -> None:
    """Close connections that may already be broken; a failure is only logged at debug level."""
    closers = [pubsub.aclose] if pubsub is not None else []
    closers += [client.aclose for client in clients if client is not None]
    for close in closers:
        try:
            await close()
        except _REDIS_ERRORS as exc:
            logger.debug("closing a Redis connection failed: %s", _describe_error(exc))


def _describe_error(error: BaseException) -> str:
    return str(error) or type(error).__name__


def describe_url(url: str) -> str:
    """Return ``url`` with its credentials masked, for messages and logs."""
    return redact_url(url)
