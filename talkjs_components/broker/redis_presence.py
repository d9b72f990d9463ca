"""Presence across nodes, stored in Redis: which users have a presence session on which node.

Two kinds of key per app, both under the broker's prefix:

- ``{prefix}:presence:nodes:{app_id}``, a sorted set of the app's node ids,
  each scored with the time (Redis's clock, in milliseconds) at which the
  node expires unless it sends a heartbeat first;
- ``{prefix}:presence:node:{node_id}:{app_id}``, the set of user ids with a
  presence session on that node.

A user is online while they are in the set of at least one node whose
score lies in the future. Each heartbeat moves its own node's score forward
by the TTL. It also *reaps* the nodes whose score has passed: it removes
them and deletes their sets. Then it reports the users who are now on no
live node, so that its service publishes their ``PresenceChanged(online=False)``. Each
change runs as one Lua script, which Redis runs atomically, so when two
nodes change one user at once exactly one of them sees the user come online
or go offline. A stopped node that unregistered in ``close()`` is reaped by
the next heartbeat of another node; one that crashed, once its TTL has passed.

Keys expire after two TTLs without a heartbeat, so a deployment whose nodes
all stopped leaves nothing behind for long. The scripts write after reading
Redis's clock with TIME, which needs scripts replicated by their effects:
the default since Redis 5 (the tests use 7.0). Node ids contain no ``:``,
so no app id can make two key names equal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..errors import BrokerError
from . import PresenceListener, PresenceUpdate

if TYPE_CHECKING:
    from .redis import RedisBroker

__all__ = ["RedisPresenceTracker"]

logger = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError)

# Shared start of every script. KEYS[1] is the app's sorted set of nodes;
# ARGV[1] and ARGV[2] are what comes before and after a node id in the name
# of that node's set; ARGV[3] is this node's id.
_PRELUDE = """
local nodes_key = KEYS[1]
local this_node = ARGV[3]
local function node_key(node)
  return ARGV[1] .. node .. ARGV[2]
end
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function live_nodes(now, include_this)
  local live = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', nodes_key, '(' .. now, '+inf')) do
    if include_this or node ~= this_node then
      live[#live + 1] = node
    end
  end
  return live
end
local function present_on(nodes, user)
  for _, node in ipairs(nodes) do
    if redis.call('SISMEMBER', node_key(node), user) == 1 then
      return true
    end
  end
  return false
end
-- Register this node until now + ttl; return whether it was registered before.
local function refresh(now, ttl)
  local registered = redis.call('ZSCORE', nodes_key, this_node) ~= false
  redis.call('ZADD', nodes_key, now + ttl, this_node)
  redis.call('PEXPIRE', nodes_key, 2 * ttl)
  redis.call('PEXPIRE', node_key(this_node), 2 * ttl)
  return registered
end
"""

# ARGV[4]: TTL in ms; ARGV[5]: number of joined users; then the joined users,
# then the users who left. Returns {registered before (1 or 0), came online, went offline}.
_UPDATE = (
    _PRELUDE
    + """
local now = now_ms()
local ttl = tonumber(ARGV[4])
local registered = refresh(now, ttl)
local others = live_nodes(now, false)
local own_key = node_key(this_node)
local joined_count = tonumber(ARGV[5])
local came_online, went_offline = {}, {}
for i = 6, 5 + joined_count do
  local user = ARGV[i]
  if redis.call('SADD', own_key, user) == 1 and not present_on(others, user) then
    came_online[#came_online + 1] = user
  end
end
for i = 6 + joined_count, #ARGV do
  local user = ARGV[i]
  if redis.call('SREM', own_key, user) == 1 and not present_on(others, user) then
    went_offline[#went_offline + 1] = user
  end
end
redis.call('PEXPIRE', own_key, 2 * ttl)
return {registered and 1 or 0, came_online, went_offline}
"""
)

# ARGV[4]: TTL in ms. Refreshes this node and reaps expired ones. Returns
# {registered before (1 or 0), users of reaped nodes who are on no live node}.
_HEARTBEAT = (
    _PRELUDE
    + """
local now = now_ms()
local registered = refresh(now, tonumber(ARGV[4]))
local live = live_nodes(now, true)
local went_offline, seen = {}, {}
for _, expired in ipairs(redis.call('ZRANGEBYSCORE', nodes_key, '-inf', now)) do
  redis.call('ZREM', nodes_key, expired)
  for _, user in ipairs(redis.call('SMEMBERS', node_key(expired))) do
    if not seen[user] and not present_on(live, user) then
      seen[user] = true
      went_offline[#went_offline + 1] = user
    end
  end
  redis.call('DEL', node_key(expired))
end
return {registered and 1 or 0, went_offline}
"""
)

# ARGV[4]: TTL in ms; then every user with a presence session on this node.
# Replaces this node's set with them. Returns {came online, went offline}.
_RESYNC = (
    _PRELUDE
    + """
local now = now_ms()
local ttl = tonumber(ARGV[4])
refresh(now, ttl)
local others = live_nodes(now, false)
local own_key = node_key(this_node)
local before, desired = {}, {}
for _, user in ipairs(redis.call('SMEMBERS', own_key)) do
  before[user] = true
end
redis.call('DEL', own_key)
local came_online, went_offline = {}, {}
for i = 5, #ARGV do
  local user = ARGV[i]
  desired[user] = true
  redis.call('SADD', own_key, user)
  if not before[user] and not present_on(others, user) then
    came_online[#came_online + 1] = user
  end
end
for user in pairs(before) do
  if not desired[user] and not present_on(others, user) then
    went_offline[#went_offline + 1] = user
  end
end
redis.call('PEXPIRE', own_key, 2 * ttl)
return {came_online, went_offline}
"""
)

# ARGV[4:]: user ids. Returns those present on a live node other than this one.
_ONLINE = (
    _PRELUDE
    + """
local others = live_nodes(now_ms(), false)
local online = {}
for i = 4, #ARGV do
  if present_on(others, ARGV[i]) then
    online[#online + 1] = ARGV[i]
  end
end
return online
"""
)


class RedisPresenceTracker:
    """Presence tracker of one app on one node, stored in the broker's Redis.

    Create it with :meth:`RedisBroker.presence_tracker`. Its heartbeat task
    runs from ``start()`` to ``close()`` and needs the broker to stay started
    meanwhile. A failed ``update`` is remembered: the next heartbeat writes
    this node's whole user set again and reports what that changed.
    """

    def __init__(
        self,
        broker: RedisBroker,
        app_id: str,
        node_id: str,
        *,
        ttl: float,
        heartbeat_interval: float,
    ) -> None:
        self._broker = broker
        self._app_id = app_id
        self.node_id = node_id
        """This node's id in Redis; the broker id and a number."""
        self._nodes_key = broker.key(f"presence:nodes:{app_id}")
        self._node_key_start = broker.key("presence:node:")
        self._node_key_end = f":{app_id}"
        self._ttl_ms = max(1, round(ttl * 1000))
        self._heartbeat_interval = heartbeat_interval
        # Users with a presence session on this node, as the service reported them.
        self._users: set[str] = set()
        self._resync_needed = False
        self._on_change: PresenceListener | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # Serializes the scripts that write this node's set, so that a
        # heartbeat's full rewrite cannot overtake an update sent before it.
        self._lock = asyncio.Lock()

    async def start(self, on_change: PresenceListener) -> None:
        """Register this node and start its heartbeat.

        Raises:
            BrokerError: Redis failed, or the broker is not started.
        """
        self._on_change = on_change
        await self._beat()
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._run_heartbeats(), name=f"talkjs-presence-heartbeat-{self.node_id}"
        )

    async def close(self) -> None:
        """Stop the heartbeat and mark this node expired, so that another node reaps it.

        Other nodes count this node's users as offline at once, and the next
        heartbeat of one of them publishes their ``PresenceChanged``. When
        Redis fails, the node expires after its TTL instead, which is logged.
        """
        heartbeat, self._heartbeat = self._heartbeat, None
        self._on_change = None
        if heartbeat is None:
            return
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        try:
            client = self._broker.command_client()
            await client.zadd(self._nodes_key, {self.node_id: 0}, xx=True)
        except (BrokerError, *_REDIS_ERRORS) as exc:
            logger.warning(
                "presence node %s of app %r could not unregister (%s); other nodes count its "
                "users as offline once its %d ms TTL passes",
                self.node_id,
                self._app_id,
                exc,
                self._ttl_ms,
            )

    async def update(self, joined: Sequence[str], left: Sequence[str]) -> PresenceUpdate:
        """Record users whose first presence session on this node started or last one ended.

        Raises:
            BrokerError: Redis failed; the next heartbeat records the change.
        """
        self._users.update(joined)
        self._users.difference_update(left)
        async with self._lock:
            try:
                registered, came_online, went_offline = await self._run(
                    _UPDATE, self._ttl_ms, len(joined), *joined, *left
                )
            except BrokerError:
                self._resync_needed = True
                raise
            update = PresenceUpdate(_decode(came_online), _decode(went_offline))
            if registered:
                return update
            # Another node reaped this one (it missed heartbeats) and announced
            # its users offline, so write them all back.
            rewritten = await self._resync()
        return PresenceUpdate(
            update.came_online + rewritten.came_online,
            update.went_offline + rewritten.went_offline,
        )

    async def online(self, user_ids: Sequence[str]) -> list[str]:
        """Return those of ``user_ids`` with a presence session on another live node.

        Raises:
            BrokerError: Redis failed.
        """
        if not user_ids:
            return []
        online: list[bytes] = await self._run(_ONLINE, *user_ids)
        return _decode(online)

    # Heartbeats

    async def _run_heartbeats(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            try:
                await self._beat()
            except BrokerError as exc:
                failures += 1
                logger.warning(
                    "presence heartbeat of node %s of app %r failed, %d in a row: %s; other "
                    "nodes count its users as offline %d ms after the last one that worked",
                    self.node_id,
                    self._app_id,
                    failures,
                    exc.message,
                    self._ttl_ms,
                )
                continue
            if failures:
                logger.info(
                    "presence heartbeat of node %s of app %r works again after %d failures",
                    self.node_id,
                    self._app_id,
                    failures,
                )
            failures = 0

    async def _beat(self) -> None:
        """Refresh this node, reap expired nodes and report what changed."""
        async with self._lock:
            registered, reaped = await self._run(_HEARTBEAT, self._ttl_ms)
            update = PresenceUpdate([], _decode(reaped))
            if not registered or self._resync_needed:
                rewritten = await self._resync()
                update = PresenceUpdate(
                    rewritten.came_online, update.went_offline + rewritten.went_offline
                )
        if update.went_offline:
            logger.info(
                "presence node %s of app %r reaped expired nodes; %d users went offline",
                self.node_id,
                self._app_id,
                len(update.went_offline),
            )
        if (update.came_online or update.went_offline) and self._on_change is not None:
            self._on_change(update)

    async def _resync(self) -> PresenceUpdate:
        """Replace this node's set with ``_users``; the caller must have acquired ``_lock``."""
        self._resync_needed = True
        came_online, went_offline = await self._run(_RESYNC, self._ttl_ms, *sorted(self._users))
        self._resync_needed = False
        return PresenceUpdate(_decode(came_online), _decode(went_offline))

    async def _run(self, script: str, *args: str | int) -> Any:
        """Run one of the scripts for this node with ``args`` after the shared arguments."""
        client = self._broker.command_client()
        try:
            return await client.register_script(script)(
                keys=[self._nodes_key],
                args=[self._node_key_start, self._node_key_end, self.node_id, *args],
            )
        except _REDIS_ERRORS as exc:
            raise BrokerError(
                f"presence of node {self.node_id} of app '{self._app_id}' could not be "
                f"updated in Redis at {self._broker.where}: {str(exc) or type(exc).__name__}"
            ) from exc


def _decode(user_ids: Sequence[bytes]) -> list[str]:
    return [user_id.decode() for user_id in user_ids]
