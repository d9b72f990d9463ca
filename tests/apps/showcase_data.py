"""Users and conversations of the showcase app: a small team, with one conversation in Hebrew."""

# Hebrew text is the point of the right-to-left view, so ruff's warning about
# letters that look like Latin ones does not apply to this file.
# ruff: noqa: RUF001

from __future__ import annotations

from talkjs_components import User

__all__ = ["CONVERSATIONS", "HEBREW_LAST_MESSAGE", "ME", "READ_BY", "USERS", "YOSSI_NAME"]

ME = "maya"
"""The signed-in user of every view."""


def _portrait(background: str, skin: str, hair: str) -> str:
    """Return an inline SVG portrait as a data URL, so pages load nothing from the network."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 40 40'>"
        f"<rect width='40' height='40' fill='{background}'/>"
        f"<ellipse cx='20' cy='37' rx='13' ry='10' fill='{hair}'/>"
        f"<circle cx='20' cy='17' r='8' fill='{skin}'/>"
        f"<path d='M12 15 Q20 5 28 15 Q26 9 20 8 Q14 9 12 15Z' fill='{hair}'/>"
        "</svg>"
    )
    return "data:image/svg+xml," + svg.replace("<", "%3C").replace(">", "%3E").replace("#", "%23")


YOSSI_NAME = "יוסי לוי"
HEBREW_LAST_MESSAGE = "מעולה, אביא את התוכניות החדשות."

USERS = [
    User(id="maya", name="Maya Cohen"),
    User(id="daniel", name="Daniel Okafor", photo_url=_portrait("#1d4ed8", "#8d5524", "#1f2937")),
    User(id="lena", name="Lena Fischer", photo_url=_portrait("#15803d", "#f1c27d", "#b45309")),
    User(id="sam", name="Sam Patel"),
    User(id="yossi", name=YOSSI_NAME),
]

# (conversation id, subject, participants, [(sender, text)]), oldest first.
CONVERSATIONS: list[tuple[str, str | None, list[str], list[tuple[str, str]]]] = [
    (
        "billing",
        "Billing question",
        ["maya", "sam"],
        [
            ("sam", "Hi, my March invoice shows the wrong VAT number."),
            ("maya", "Sorry about that! I've corrected it and sent you a new invoice."),
            ("sam", "Got it, thank you."),
        ],
    ),
    (
        "yossi-maya",
        None,
        ["maya", "yossi"],
        [
            ("yossi", "שלום מאיה! מה שלומך היום?"),
            ("maya", "שלום יוסי, הכול טוב, תודה. ואצלך?"),
            ("yossi", "מצוין. נפגשים מחר בעשר במשרד?"),
            ("maya", "כן, נתראה מחר בעשר."),
            ("yossi", HEBREW_LAST_MESSAGE),
        ],
    ),
    (
        "lena-maya",
        None,
        ["maya", "lena"],
        [
            ("lena", "Can we move our one-on-one to Thursday?"),
            ("maya", "Sure, Thursday at 3 works for me."),
            ("lena", "Perfect, see you then."),
        ],
    ),
    (
        "daniel-maya",
        None,
        ["maya", "daniel"],
        [
            ("daniel", "Could you review my pull request before lunch?"),
            ("daniel", "It's the one that fixes the `retry` logic in the uploader."),
        ],
    ),
    (
        "launch",
        "Product launch",
        ["maya", "daniel", "lena"],
        [
            ("daniel", "Morning! The release build passed every check overnight."),
            ("lena", "Great news. I've updated the changelog and the screenshots."),
            ("maya", "Thanks both. Shall we ship at *2 pm* today?"),
            ("daniel", "Works for me. I'll post the announcement on the blog."),
            ("lena", "Here is the draft: https://example.com/blog/launch"),
            ("maya", "Reads well. Let's go!"),
        ],
    ),
]

# Conversations whose messages the given users have read.
READ_BY = {
    "billing": ["maya"],
    "yossi-maya": ["yossi"],
    "lena-maya": ["maya", "lena"],
    "launch": ["maya", "daniel", "lena"],
}
