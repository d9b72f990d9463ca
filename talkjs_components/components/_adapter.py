"""The one place that touches ReactPy APIs still changing between 2.0 betas.

ReactPy 2.0 is pinned exactly (2.0.0b13). When the pin moves, this module and
the test fixtures are what to check first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reactpy import config, reactjs
from reactpy.core import layout as layout_module

__all__ = [
    "Composer",
    "DaySeparator",
    "MessageEditor",
    "MessageLog",
    "Notifier",
    "Timestamp",
    "load_js_components",
    "repair_detached_renders",
    "use_serial_rendering",
]

_MODULE = Path(__file__).parent / "static" / "talkjs-components.js"

# A fixed module name gives the file a stable URL: /reactpy/modules/talkjs-components.js.
_constructors: list[Any] = reactjs.component_from_file(
    _MODULE,
    ["Composer", "DaySeparator", "MessageEditor", "MessageLog", "Notifier", "Timestamp"],
    name="talkjs-components",
)
Composer, DaySeparator, MessageEditor, MessageLog, Notifier, Timestamp = _constructors


def load_js_components(path: Path, names: list[str], module_name: str) -> list[Any]:
    """Load ``names`` from the JS module at ``path``.

    The module is served at ``/reactpy/modules/<module_name>.js``.
    """
    constructors: list[Any] = reactjs.component_from_file(path, names, name=module_name)
    return constructors


def use_serial_rendering() -> None:
    """Switch ReactPy to serial rendering for this process.

    ReactPy 2.0.0b13's default async rendering keeps every finished render
    task, with its update message, until the connection closes: a long chat
    would grow without bound. Serial rendering does not have this leak.
    """
    config.REACTPY_ASYNC_RENDERING.set_current(False)


use_serial_rendering()


def _find_live_state(root: Any, life_cycle_state_id: object) -> Any:
    """Return the model state of the live tree that renders ``life_cycle_state_id``."""
    pending = [root]
    while pending:
        state = pending.pop()
        if state.is_component_state and state.life_cycle_state.id == life_cycle_state_id:
            return state
        pending.extend(state.children_by_key.values())
    return None


def repair_detached_renders() -> None:
    """Work around "detached model state" errors of ReactPy 2.0.0b13's serial rendering.

    A component that renders by itself right after an ancestor rendered can
    find the layout's index pointing at its previous model state, whose parent
    is gone, and the whole layout then fails. This replaces the serial render
    loop with one that looks such a component up in the live tree, repairs
    the index and renders the live state, or skips the render when the
    component is no longer in the tree. Chat lists depend on small components
    rendering by themselves, so they meet this case.
    """
    if getattr(layout_module.Layout._serial_render, "_talkjs_repaired", False):
        return

    async def serial_render(self: Any) -> Any:
        states = self._model_states_by_life_cycle_state_id
        while True:
            life_cycle_state_id = await self._rendering_queue.get()
            model_state = states.get(life_cycle_state_id)
            if model_state is None:
                continue
            try:
                model_state.parent  # noqa: B018 - the property raises when detached
            except RuntimeError:
                root = states[self._root_life_cycle_state_id]
                live = _find_live_state(root, life_cycle_state_id)
                if live is None:
                    continue
                states[life_cycle_state_id] = model_state = live
            except AttributeError:
                pass  # the root has no parent
            return await self._create_layout_update(model_state)

    serial_render._talkjs_repaired = True  # type: ignore[attr-defined]
    layout_module.Layout._serial_render = serial_render  # type: ignore[method-assign]


repair_detached_renders()
