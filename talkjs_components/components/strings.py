"""Every text the components show, in one table so other locales can follow.

Keys are stable; values are English. A translation replaces values only.
"""

from __future__ import annotations

__all__ = ["STRINGS", "text"]

STRINGS: dict[str, str] = {
    "messages_label": "Messages",
    "message_label": "Message",
    "send": "Send",
    "placeholder": "Say something...",
    "read_only_placeholder": "You can read this conversation but not write in it.",
    "loading": "Loading chat…",
    "unavailable": "Conversation unavailable",
    "reconnecting": "Connection lost. Reconnecting…",
    "no_messages": "No messages yet. Say hello!",
    "no_conversation": "No conversation selected.",
    "connect_failed": "Could not connect to chat: {reason}",
    "load_failed": "Could not load the conversation: {reason}",
    "send_failed": "Could not send the message: {reason}",
    "not_loaded": "the conversation has not loaded yet; try again in a moment",
    "you": "You",
    "new_messages": "New messages ↓",
    "edited": "(edited)",
    "receipt_sent": "Sent",
    "receipt_read": "Read",
    "receipt_read_by_some": "Read by some",
    "edit": "Edit",
    "edit_message": "Edit message",
    "edit_label": "Edit message text",
    "save": "Save",
    "cancel": "Cancel",
    "delete": "Delete",
    "delete_message": "Delete message",
    "confirm_delete": "Delete this message?",
    "edit_failed": "Could not edit the message: {reason}",
    "delete_failed": "Could not delete the message: {reason}",
    "message_actions": "Message actions",
    "message_actions_icon": "⋯",
    "typing_one": "{name} is typing…",
    "typing_two": "{first} and {second} are typing…",
    "typing_many": "Several people are typing…",
    "leave": "Leave conversation",
    "online": "Online",
    "offline": "Offline",
    "online_count": "{count} online",
    "leave_failed": "Could not leave the conversation: {reason}",
    "participants_title": "{names}",
    "inbox_title": "Conversations",
    "feed_label": "Conversations",
    "feed_loading": "Loading conversations…",
    "feed_empty": "No conversations to show.",
    "feed_load_failed": "Could not load your conversations: {reason}",
    "feed_no_messages": "No messages yet",
    "feed_now": "now",
    "unread_message": "{count} unread message",
    "unread_messages": "{count} unread messages",
    "back": "Back",
    "back_label": "Back to conversations",
    "open_chat": "Open chat",
    "close_chat": "Close chat",
    "close": "Close",
    "popup_label": "Chat",
}


def text(key: str, **values: object) -> str:
    """Return the text for ``key`` with ``values`` filled in."""
    return STRINGS[key].format(**values)
