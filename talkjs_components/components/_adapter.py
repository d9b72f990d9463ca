"""The one place that touches ReactPy APIs still changing between 2.0 betas.

ReactPy 2.0 is pinned exactly (2.0.0b13). When the pin moves, this module and
the test fixtures are what to check first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reactpy import config, reactjs

__all__ = [
    "Composer",
    "DaySeparator",
    "MessageActionMenu",
    "MessageEditor",
    "MessageLog",
    "Notifier",
    "Timestamp",
    "load_js_components",
    "use_serial_rendering",
]

_MODULE = Path(__file__).parent / "static" / "talkjs-components.js"

# A fixed module name gives the file a stable URL: /reactpy/modules/talkjs-components.js.
_constructors: list[Any] = reactjs.component_from_file(
    _MODULE,
    [
        "Composer",
        "DaySeparator",
        "MessageActionMenu",
        "MessageEditor",
        "MessageLog",
        "Notifier",
        "Timestamp",
    ],
    name="talkjs-components",
)
(
    Composer,
    DaySeparator,
    MessageActionMenu,
    MessageEditor,
    MessageLog,
    Notifier,
    Timestamp,
) = _constructors


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


_BOXES_MODULE = Path(__file__).parent / "static" / "talkjs-boxes.js"

# Browser-side parts of Inbox and Popup, served at /reactpy/modules/talkjs-boxes.js.
_box_constructors: list[Any] = reactjs.component_from_file(
    _BOXES_MODULE, ["FeedTime", "InboxFocus", "PopupController"], name="talkjs-boxes"
)
FeedTime, InboxFocus, PopupController = _box_constructors
