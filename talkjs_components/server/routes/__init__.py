"""The REST API v1 operations, one module per resource."""

from __future__ import annotations

from ..routing import Operation
from .conversations import OPERATIONS as CONVERSATION_OPERATIONS
from .messages import OPERATIONS as MESSAGE_OPERATIONS
from .participants import OPERATIONS as PARTICIPANT_OPERATIONS
from .users import OPERATIONS as USER_OPERATIONS

__all__ = ["OPERATIONS"]

OPERATIONS: list[Operation] = [
    *USER_OPERATIONS,
    *CONVERSATION_OPERATIONS,
    *PARTICIPANT_OPERATIONS,
    *MESSAGE_OPERATIONS,
]
"""Every REST operation, in the order the OpenAPI document lists them."""
