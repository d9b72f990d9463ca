"""The chat services of a server's apps, all on one database and one broker."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..auth import App
from ..broker import Broker
from ..broker.memory import MemoryBroker
from ..errors import InvalidInput
from ..service import ChatService
from ..store.sqlite import SQLiteStore

__all__ = ["AppHost", "HostedApp"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostedApp:
    """An app served by the server: its id and secret key, and its chat service."""

    app: App
    service: ChatService


class AppHost:
    """Runs one :class:`ChatService` per app, every app's rows in one SQLite file.

    Each app gets its own ``SQLiteStore`` (rows carry the app id) and they all
    share one broker, whose channels are named after the app, so the events of
    one app never reach another's listeners.

    Args:
        apps: The apps to serve; each needs a secret key, which REST clients
            authenticate with.
        database: The SQLite file, created when missing.
        broker: The broker the services share; a new ``MemoryBroker`` when
            omitted. The host starts and closes it either way.

    Raises:
        InvalidInput: no app is given, an app id is listed twice, or an app
            has no secret key.
    """

    def __init__(self, apps: Iterable[App], database: Path, broker: Broker | None = None) -> None:
        self.database = database
        self._broker = broker if broker is not None else MemoryBroker()
        self._apps: dict[str, HostedApp] = {}
        for app in apps:
            if app.app_id in self._apps:
                raise InvalidInput(f"app '{app.app_id}' is configured twice: list each app once")
            if app.secret_key is None:
                raise InvalidInput(
                    f"app '{app.app_id}' has no secret key: the server needs one per app to "
                    "authenticate REST calls and user tokens"
                )
            store = SQLiteStore(database, app.app_id)
            service = ChatService(store, self._broker, app_id=app.app_id, owns_broker=False)
            self._apps[app.app_id] = HostedApp(app, service)
        if not self._apps:
            raise InvalidInput(
                "no app is configured: create one with 'talkjs-components apps create', or set "
                "TALKJS_APP_ID and TALKJS_SECRET_KEY"
            )

    @property
    def app_ids(self) -> list[str]:
        """The ids of the hosted apps, in configuration order."""
        return list(self._apps)

    def get(self, app_id: str) -> HostedApp | None:
        """Return the hosted app ``app_id``, or ``None`` when the server does not serve it."""
        return self._apps.get(app_id)

    async def start(self) -> None:
        """Start the broker and every app's service; on a failure, close what started.

        Raises:
            StorageError: the database cannot be opened.
        """
        await self._broker.start()
        started: list[ChatService] = []
        try:
            for hosted in self._apps.values():
                await hosted.service.start()
                started.append(hosted.service)
        except BaseException:
            for service in started:
                await service.close()
            await self._broker.close()
            raise
        logger.info(
            "serving %d apps (%s) on database %s",
            len(self._apps),
            ", ".join(repr(app_id) for app_id in self._apps),
            self.database,
        )

    async def close(self) -> None:
        """Close every app's service, then the broker. Closing twice does nothing.

        A service that fails to close is logged, and the others are still closed.
        """
        for app_id, hosted in self._apps.items():
            try:
                await hosted.service.close()
            except Exception:
                logger.exception("closing the chat service of app %r failed", app_id)
        await self._broker.close()

    async def check_health(self) -> None:
        """Check that every app's store runs a query.

        Raises:
            ChatError: a service is not running, or its store query failed.
        """
        for hosted in self._apps.values():
            await hosted.service.check_store()
