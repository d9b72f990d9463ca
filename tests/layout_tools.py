"""Drive a ReactPy Layout without a browser and read its rendered model."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

from reactpy import component, html, use_state
from reactpy.core.layout import Layout

from talkjs_components import Session
from talkjs_components.auth import create_user_token

from .remote_backend import ChatBackend

__all__ = ["LayoutRunner", "alice_session", "find_all", "text_of"]


def text_of(model: Any) -> str:
    """Return the concatenated text of a VDOM model."""
    if isinstance(model, str):
        return model
    if isinstance(model, dict):
        return "".join(text_of(child) for child in model.get("children", ()))
    return ""


def find_all(model: Any, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Return every element of ``model`` for which ``predicate`` is true, in document order."""
    found: list[dict[str, Any]] = []
    if isinstance(model, dict):
        if predicate(model):
            found.append(model)
        for child in model.get("children", ()):
            found.extend(find_all(child, predicate))
    return found


def _set_pointer(document: Any, pointer: str, value: Any) -> Any:
    if not pointer:
        return value
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.lstrip("/").split("/")]
    target = document
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        index = int(last)
        if index == len(target):
            target.append(value)
        else:
            target[index] = value
    else:
        target[last] = value
    return document


@component
def _Root(element: Any, hooks: dict[str, Callable[[bool], None]]) -> Any:
    """Show ``element`` until the runner unmounts it through ``hooks["set_mounted"]``.

    It also makes a plain element usable as a Layout root, which must be a
    component.
    """
    mounted, set_mounted = use_state(True)
    hooks["set_mounted"] = set_mounted
    return element if mounted else html.div()


class LayoutRunner:
    """Render a component tree in a ReactPy ``Layout`` and keep its current model.

    A background task takes every update as the layout produces it, the way
    ReactPy's server loop does. ``Layout.render()`` is never cancelled midway:
    cancelling it can drop a render that was already taken from the queue,
    after which that component never renders again.
    """

    def __init__(self, root: Any) -> None:
        self._hooks: dict[str, Callable[[bool], None]] = {}
        self.layout = Layout(_Root(root, self._hooks))
        self.model: Any = {}
        self.update_sizes: list[int] = []
        """Size in bytes of each update as JSON, the form ReactPy sends to the browser."""
        self._updated = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def __aenter__(self) -> LayoutRunner:
        await self.layout.__aenter__()
        self._pump = asyncio.get_running_loop().create_task(self._take_updates())
        await self.render()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pump is not None:
            # Unmount the tree first: its sessions end, so no late event (a
            # websocket frame, say) can start a render while the pump stops.
            if self._failure is None and "set_mounted" in self._hooks:
                self._hooks["set_mounted"](False)
                with contextlib.suppress(TimeoutError):
                    await self.render()
            await self._settle()
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.layout.__aexit__(exc_type, exc, traceback)  # type: ignore[arg-type]

    async def _settle(self, quiet: float = 0.05, limit: float = 2.0) -> None:
        """Wait until no update arrived for ``quiet`` seconds (at most ``limit`` seconds).

        The pump is then waiting for the next render, not inside one, so
        cancelling it cannot cut a render in half.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline and not self._pump_failed:
            self._updated.clear()
            try:
                await asyncio.wait_for(self._updated.wait(), quiet)
            except TimeoutError:
                return

    @property
    def _pump_failed(self) -> bool:
        return self._failure is not None

    async def _take_updates(self) -> None:
        try:
            while True:
                update = await self.layout.render()
                self.update_sizes.append(len(json.dumps(update, separators=(",", ":")).encode()))
                self.model = _set_pointer(self.model, update["path"], update["model"])
                self._updated.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failure = exc
            self._updated.set()

    async def render(self, timeout: float = 5.0) -> None:
        """Wait until at least one more update has been applied to ``model``."""
        self._updated.clear()
        try:
            await asyncio.wait_for(self._updated.wait(), timeout)
        finally:
            if self._failure is not None:
                raise self._failure

    async def trigger(self, handler_name: str, *arguments: Any) -> None:
        """Call the first event handler named ``handler_name`` as the browser would.

        Raises:
            LookupError: No rendered element has such a handler.
        """
        elements = find_all(self.model, lambda node: handler_name in node.get("eventHandlers", {}))
        if not elements:
            raise LookupError(f"no rendered element has an event handler {handler_name!r}")
        target = elements[0]["eventHandlers"][handler_name]["target"]
        await self.layout.deliver(
            {"type": "layout-event", "target": target, "data": list(arguments)}
        )

    @property
    def text(self) -> str:
        """Text of the whole rendered tree."""
        return text_of(self.model)

    async def until(self, predicate: Callable[[LayoutRunner], bool], timeout: float = 5.0) -> None:
        """Wait, as updates arrive, until ``predicate(self)`` holds.

        Raises:
            TimeoutError: It did not hold within ``timeout`` seconds; the
                message shows the text rendered last.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"condition not met within {timeout} s; rendered text: {self.text!r}"
                )
            # Short waits, so a condition that turns true without an update is seen too.
            with contextlib.suppress(TimeoutError):
                await self.render(timeout=min(remaining, 0.05))


def alice_session(backend: ChatBackend, *children: Any, **props: Any) -> Any:
    """Return a ``Session`` signed in as alice with a valid token, around ``children``."""
    token = create_user_token(backend.app, "alice")
    return Session(*children, app_id=backend.app.app_id, user_id="alice", token=token, **props)
