"""Render chat message text as ReactPy VDOM with the formatting subset of TalkJS.

TalkJS formats message text the way WhatsApp does, and so does this module:

- ``*bold*`` becomes ``<strong>``, ``_italic_`` becomes ``<em>``, ``~strike~``
  becomes ``<s>`` and ```` `code` ```` becomes ``<code>``.
- Text between two fences of three backticks becomes ``<pre><code>``, verbatim.
  A language word directly followed by a line break after the opening fence is
  kept as ``data-language`` on the ``<code>`` element.
- ``http://``, ``https://`` and ``mailto:`` URLs become links that open in a new
  tab. Every other scheme, ``javascript:`` and ``data:`` included, stays text.

Nothing else becomes markup. ReactPy escapes string children, so HTML tags,
Markdown headings, lists and ``[text](url)`` show as typed. A URL inside
``[text](url)`` is still linked, with the URL as its text.

Markers apply only at word boundaries, so ``snake_case_name``, ``2*3*4`` and
markers inside URLs stay text. An opening marker must be at the start or after
whitespace, punctuation or a symbol (emoji included), and must be followed by a
character that is not whitespace. A closing marker must follow a character that
is not whitespace, and must be at the end or before whitespace, punctuation or a
symbol. The same rules hold for the backticks of code spans. A doubled marker
such as ``**`` is never a delimiter. Inline markers and code spans end at a
line break. Each opening marker pairs with the nearest
closing marker of its kind. Bold, italic and strikethrough nest in any order,
but no style nests inside itself. Code spans and links take precedence over the
other styles, so markers inside them are text.

Element boundaries never split an emoji ZWJ sequence, a flag, a skin tone, a
keycap or a letter with combining marks, because a marker, fence, URL or
highlight whose edge would split one stays text. ``_is_grapheme_boundary``
lists the rules covered.

The output keeps line breaks as ``"\\n"`` in text, which needs
``white-space: pre-wrap`` on the message element (``.tjs-message__text`` sets
it). Long words are not broken here because ``overflow-wrap: anywhere`` on
``.tjs-message`` wraps them. ``<pre>`` needs ``white-space: pre-wrap`` of its
own, because browsers default it to ``pre``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import urlsplit

from reactpy import html
from reactpy.types import VdomChild, VdomConstructor, VdomDict

__all__ = ["format_message_text", "message_plain_text"]

_LINK_REL = "noopener noreferrer nofollow"
"""The ``rel`` of every link in a message.

``nofollow`` marks the links as not endorsed, so search engines do not rank
the linked sites higher for them.
``noopener`` stops the opened page from reaching this page through
``window.opener``. ``noreferrer`` keeps the chat page's URL, which may contain
conversation ids, out of the ``Referer`` header that the linked site receives.
"""

_LINK_TARGET = "_blank"

_EMPHASIS_TAGS: Mapping[str, str] = {"*": "strong", "_": "em", "~": "s"}
_CODE_MARKER = "`"
_FENCE = "```"

_LANGUAGE_LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_+#.-]{0,31})\r?\n")
"""A language word such as ``python`` or ``c++`` on the line of the opening fence."""

_URL_EXCLUDED = r"\s<>\"`\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
"""Characters that end a URL candidate.

These are whitespace, control characters, invisible format characters (zero
width space, word joiner, byte order mark and the bidirectional controls), and
``<``, ``>``, ``"`` and the backtick, which RFC 3986 excludes and which often
enclose a URL.
"""

_URL_FORBIDDEN = re.compile(f"[{_URL_EXCLUDED}]")

_URL_CANDIDATE = re.compile(
    rf"(?<![^\W_])(?:https?://|mailto:)[^{_URL_EXCLUDED}]+",
    re.IGNORECASE,
)
"""A URL of an allowed scheme that does not continue a word (``_`` may precede it)."""

_URL_TRAILING_PUNCTUATION = frozenset(".,:;!?'*_~\u2018\u2019\u201c\u201d\u00ab\u00bb")
"""Characters dropped from the end of a URL.

The extended autolinks of the GitHub Flavored Markdown spec drop ``?!.,:*_~``.
This set adds ``;``, the apostrophe, typographic quotes and guillemets.
"""

_URL_CLOSING_BRACKETS: Mapping[str, str] = {")": "(", "]": "["}

_REGIONAL_INDICATOR_RUN = re.compile("[\U0001f1e6-\U0001f1ff]+")

_ZERO_WIDTH_JOINER = "\u200d"
_ZERO_WIDTH_NON_JOINER = "\u200c"


@dataclass(frozen=True, slots=True)
class _Element:
    """An element of the parse tree, before it becomes VDOM."""

    tag: str
    children: tuple[_Node, ...]
    attributes: Mapping[str, str] = field(default_factory=dict)


_Node: TypeAlias = "str | _Element"


def format_message_text(text: str, *, highlighted_words: Sequence[str] = ()) -> list[VdomChild]:
    """Convert message text to ReactPy VDOM children with TalkJS formatting.

    The rules are in the module docstring. Pass the result as the children of
    the message element, e.g. ``html.div(attributes, *format_message_text(text))``.
    Top-level elements carry index keys, so passing the list as one child also
    works.

    Args:
        text: The message text as the sender typed it.
        highlighted_words: Words or phrases to wrap in ``<mark>``. Matching is
            case-insensitive (Python's ``re.IGNORECASE``) and on whole words,
            where a word character is what Python's ``\\w`` matches. Surrounding
            whitespace is stripped, and empty entries are ignored. Matches
            inside bold, italic and strikethrough are marked. Matches inside
            code, code blocks and link text are not, and a match never crosses
            a formatting boundary.

    Returns:
        Strings and VDOM elements in document order.

    Raises:
        TypeError: ``highlighted_words`` is a single ``str``, which would be
            read as a list of its characters.
    """
    if isinstance(highlighted_words, str):
        raise TypeError(
            f"highlighted_words must be a sequence of words, not the str {highlighted_words!r}. "
            "Wrap a single word in a list."
        )
    pattern = _highlight_pattern(tuple(highlighted_words))
    children: list[VdomChild] = []
    for node in _parse(text):
        children.extend(_to_vdom(node, pattern))

    for index, child in enumerate(children):
        if isinstance(child, VdomDict):
            child["attributes"] = {**child.get("attributes", {}), "key": str(index)}
    return children


def message_plain_text(text: str) -> str:
    """Remove the formatting markers from message text, for previews and notifications.

    The result equals the concatenated text of ``format_message_text(text)``:
    markers that format are removed, and markers that stay text are kept. A
    fenced block contributes its code without the fences and language word.
    """
    return "".join(_plain_text(node) for node in _parse(text))


def _parse(text: str) -> list[_Node]:
    nodes: list[_Node] = []
    for part in _split_fenced_blocks(text):
        if isinstance(part, str):
            nodes.extend(_InlineParser(part).parse())
        else:
            nodes.append(part)
    return nodes


def _plain_text(node: _Node) -> str:
    if isinstance(node, str):
        return node
    return "".join(_plain_text(child) for child in node.children)


# Unicode helpers


def _is_extending(character: str) -> bool:
    """Return whether ``character`` joins the grapheme cluster before it.

    This covers combining marks, variation selectors, the keycap mark, the zero
    width joiner and non-joiner, emoji skin tones and emoji tag characters.
    """
    if unicodedata.category(character) in ("Mn", "Mc", "Me"):
        return True
    if character in (_ZERO_WIDTH_JOINER, _ZERO_WIDTH_NON_JOINER):
        return True
    code_point = ord(character)
    return 0x1F3FB <= code_point <= 0x1F3FF or 0xE0020 <= code_point <= 0xE007F


def _is_regional_indicator(character: str) -> bool:
    return 0x1F1E6 <= ord(character) <= 0x1F1FF


def _is_grapheme_boundary(text: str, index: int) -> bool:
    """Return whether a boundary at ``index`` keeps every grapheme cluster whole.

    This follows the rules of Unicode Standard Annex #29 that matter here: CR LF,
    extending characters, ZWJ sequences and regional indicator pairs. It rejects
    every boundary directly after a ZWJ, which is stricter than the annex.

    Hangul syllable sequences need no rule, because markers and whole-word
    matches never sit between two letters.

    NOTE: characters with Grapheme_Cluster_Break=Prepend, such as U+0600, are
    not handled, so a closing marker right after one splits it from the marker.
    """
    if index <= 0 or index >= len(text):
        return True
    before, after = text[index - 1], text[index]
    if before == "\r" and after == "\n":
        return False
    if _is_extending(after) or before == _ZERO_WIDTH_JOINER:
        return False
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        return _regional_indicators_before(text, index) % 2 == 0
    return True


def _regional_indicators_before(text: str, index: int) -> int:
    """Return how many regional indicators directly precede ``index``, which follows one."""
    run_starts = _regional_indicator_run_starts(text)
    return index - run_starts[bisect_right(run_starts, index - 1) - 1]


@functools.lru_cache(maxsize=16)
def _regional_indicator_run_starts(text: str) -> list[int]:
    """Return where each run of regional indicators in ``text`` starts.

    Cached because highlighting can test many boundaries inside one long run of
    flags, and counting back from each would take quadratic time.
    """
    return [match.start() for match in _REGIONAL_INDICATOR_RUN.finditer(text)]


def _is_removable(text: str, start: int, stop: int) -> bool:
    """Return whether removing ``text[start:stop]`` leaves every grapheme cluster whole.

    Both edges must be cluster boundaries. The characters that become
    neighbours must not join either, as two regional indicators would join
    into a flag.

    NOTE: two removals side by side, as in ``*a🇮*_🇱b_``, can still bring two
    regional indicators together in the plain text.
    """
    if not (_is_grapheme_boundary(text, start) and _is_grapheme_boundary(text, stop)):
        return False
    if start == 0 or stop >= len(text):
        return True
    before, after = text[start - 1], text[stop]
    if before == "\r" and after == "\n":
        return False
    return not (_is_regional_indicator(before) and _is_regional_indicator(after))


def _is_separator(character: str) -> bool:
    """Return whether ``character`` is whitespace, punctuation or a symbol."""
    return character.isspace() or unicodedata.category(character)[0] in ("P", "S")


def _base_before(text: str, index: int) -> str:
    """Return the first character before ``index`` that is not an extending character.

    For an emoji with a variation selector, such as ``❤️``, this is the emoji.
    Returns ``""`` when only extending characters precede ``index``.
    """
    while index > 0:
        index -= 1
        if not _is_extending(text[index]):
            return text[index]
    return ""


# Delimiters


def _is_opening_marker(text: str, index: int, marker: str) -> bool:
    after = index + 1
    if after >= len(text) or text[after].isspace() or text[after] == marker:
        return False
    if not _is_removable(text, index, after):
        return False
    if index == 0:
        return True
    if text[index - 1] == marker:
        return False
    base = _base_before(text, index)
    return base == "" or _is_separator(base)


def _is_closing_marker(text: str, index: int, marker: str) -> bool:
    if index == 0 or text[index - 1].isspace() or text[index - 1] == marker:
        return False
    after = index + 1
    if not _is_removable(text, index, after):
        return False
    if after == len(text):
        return True
    return text[after] != marker and _is_separator(text[after])


def _marker_positions(text: str, marker: str) -> Iterator[int]:
    index = text.find(marker)
    while index != -1:
        yield index
        index = text.find(marker, index + 1)


# Fenced code blocks


def _split_fenced_blocks(text: str) -> list[str | _Element]:
    """Split ``text`` into stretches of inline text and ``<pre>`` elements.

    Each fence pairs with the next one. A pair whose code would be blank, or
    whose edges would split a grapheme cluster, stays text, and the search
    continues one character after its opening fence.
    """
    parts: list[str | _Element] = []
    cursor = 0
    start = text.find(_FENCE)
    while start != -1:
        end = text.find(_FENCE, start + len(_FENCE))
        if end == -1:
            break
        block = _fenced_block(text, start, end)
        if block is None:
            start = text.find(_FENCE, start + 1)
            continue
        if start > cursor:
            parts.append(text[cursor:start])
        parts.append(block)
        cursor = end + len(_FENCE)
        start = text.find(_FENCE, cursor)

    if cursor < len(text):
        parts.append(text[cursor:])
    return parts


def _fenced_block(text: str, start: int, end: int) -> _Element | None:
    """Build the ``<pre>`` element for fences at ``start`` and ``end``, if they form one.

    A language word with its line break after the opening fence, or else one
    line break there, is not part of the code. Neither is one line break right
    before the closing fence.
    """
    code_start = start + len(_FENCE)
    code_end = end
    attributes: dict[str, str] = {}
    language = _LANGUAGE_LINE.match(text, code_start, code_end)
    if language is not None:
        attributes["data-language"] = language.group(1)
        code_start = language.end()
    else:
        code_start += _line_break_length(text, code_start, code_end)
    if text.endswith("\n", code_start, code_end):
        code_end -= 2 if text.endswith("\r\n", code_start, code_end) else 1

    code = text[code_start:code_end]
    if not code.strip():
        return None
    if not (
        _is_removable(text, start, code_start) and _is_removable(text, code_end, end + len(_FENCE))
    ):
        return None
    return _Element("pre", (_Element("code", (code,), attributes),))


def _line_break_length(text: str, start: int, end: int) -> int:
    if text.startswith("\r\n", start, end):
        return 2
    return 1 if text.startswith("\n", start, end) else 0


# URLs


def _trim_url(candidate: str) -> str:
    """Drop trailing punctuation and unbalanced closing brackets from a URL candidate.

    Balanced brackets stay, so ``https://en.wikipedia.org/wiki/Python_(language)``
    keeps its final ``)``.
    """
    opening_counts = {opening: candidate.count(opening) for opening in "(["}
    closing_counts = {closing: candidate.count(closing) for closing in _URL_CLOSING_BRACKETS}
    end = len(candidate)
    while end > 0:
        last = candidate[end - 1]
        if last in _URL_TRAILING_PUNCTUATION:
            end -= 1
        elif (
            last in _URL_CLOSING_BRACKETS
            and closing_counts[last] > opening_counts[_URL_CLOSING_BRACKETS[last]]
        ):
            closing_counts[last] -= 1
            end -= 1
        else:
            break
    return candidate[:end]


def _is_allowed_url(url: str) -> bool:
    """Return whether ``url`` is a well-formed http, https or mailto URL.

    http and https need a host, and mailto needs an address with an ``@``.
    """
    if _URL_FORBIDDEN.search(url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return False

    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(parts.hostname)
    if scheme == "mailto":
        mailbox, at_sign, domain = parts.path.partition("@")
        return bool(mailbox and at_sign and domain)
    return False


def _link(url: str) -> _Element:
    return _Element("a", (url,), {"href": url, "target": _LINK_TARGET, "rel": _LINK_REL})


# Inline parsing


class _InlineParser:
    """Parse text without fenced blocks into strings and inline elements."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_breaks = list(_marker_positions(text, "\n"))

        code_spans = self._find_code_spans()
        covered = bytearray(len(text))
        for start, end, _ in code_spans:
            covered[start:end] = b"\x01" * (end - start)
        links = self._find_links(covered)
        for start, end, _ in links:
            covered[start:end] = b"\x01" * (end - start)

        # Code spans and links never overlap: a URL cannot contain a backtick.
        self.atoms = sorted(code_spans + links, key=lambda atom: atom[0])
        self.atom_starts = [start for start, _, _ in self.atoms]
        openers, self.closers = self._find_emphasis_markers(covered)
        self.opener_positions = [index for index, _ in openers]
        self.opener_markers = [marker for _, marker in openers]

    def parse(self) -> list[_Node]:
        return self._parse_range(0, len(self.text), frozenset(_EMPHASIS_TAGS))

    def _find_code_spans(self) -> list[tuple[int, int, _Element]]:
        text = self.text
        positions = list(_marker_positions(text, _CODE_MARKER))
        closers = [index for index in positions if _is_closing_marker(text, index, _CODE_MARKER)]
        spans: list[tuple[int, int, _Element]] = []
        cursor = 0
        for opener in positions:
            if opener < cursor or not _is_opening_marker(text, opener, _CODE_MARKER):
                continue
            closer = self._first_closer(closers, opener, len(text))
            if closer is not None:
                spans.append((opener, closer + 1, _Element("code", (text[opener + 1 : closer],))))
                cursor = closer + 1
        return spans

    def _find_links(self, covered: bytearray) -> list[tuple[int, int, _Element]]:
        links: list[tuple[int, int, _Element]] = []
        for match in _URL_CANDIDATE.finditer(self.text):
            start = match.start()
            if covered[start]:
                continue
            url = _trim_url(match.group())
            end = start + len(url)
            if not _is_allowed_url(url):
                continue
            if _is_grapheme_boundary(self.text, start) and _is_grapheme_boundary(self.text, end):
                links.append((start, end, _link(url)))
        return links

    def _find_emphasis_markers(
        self, covered: bytearray
    ) -> tuple[list[tuple[int, str]], dict[str, list[int]]]:
        """Find the markers outside code spans and links that can open or close a style.

        Returns:
            The openers as sorted ``(position, marker)`` pairs, and the sorted
            closer positions of each marker.
        """
        text = self.text
        openers: list[tuple[int, str]] = []
        closers: dict[str, list[int]] = {}
        for marker in _EMPHASIS_TAGS:
            positions = [index for index in _marker_positions(text, marker) if not covered[index]]
            openers.extend(
                (index, marker) for index in positions if _is_opening_marker(text, index, marker)
            )
            closers[marker] = [
                index for index in positions if _is_closing_marker(text, index, marker)
            ]
        openers.sort()
        return openers, closers

    def _line_end(self, index: int) -> int:
        position = bisect_left(self.line_breaks, index)
        return self.line_breaks[position] if position < len(self.line_breaks) else len(self.text)

    def _first_closer(self, closers: list[int], opener: int, end: int) -> int | None:
        """Return the first closer on the opener's line and before ``end``, if any.

        The closer must leave at least one character of content.
        """
        limit = min(end, self._line_end(opener))
        position = bisect_left(closers, opener + 2)
        if position < len(closers) and closers[position] < limit:
            return closers[position]
        return None

    def _parse_range(self, start: int, end: int, allowed: frozenset[str]) -> list[_Node]:
        nodes: list[_Node] = []
        cursor = start
        for opener, closer, marker in self._emphasis_pairs(start, end, allowed):
            nodes.extend(self._unstyled_nodes(cursor, opener))
            children = self._parse_range(opener + 1, closer, allowed - {marker})
            nodes.append(_Element(_EMPHASIS_TAGS[marker], tuple(children)))
            cursor = closer + 1
        nodes.extend(self._unstyled_nodes(cursor, end))
        return nodes

    def _emphasis_pairs(
        self, start: int, end: int, allowed: frozenset[str]
    ) -> Iterator[tuple[int, int, str]]:
        """Yield the outermost marker pairs in ``[start, end)``, left to right.

        An opener without a closer on its line stays text. Openers inside a
        yielded pair are left to the nested call for that pair's content.
        """
        cursor = start
        position = bisect_left(self.opener_positions, start)
        while position < len(self.opener_positions) and self.opener_positions[position] < end:
            opener = self.opener_positions[position]
            marker = self.opener_markers[position]
            position += 1
            if opener < cursor or marker not in allowed:
                continue
            closer = self._first_closer(self.closers[marker], opener, end)
            if closer is not None:
                yield opener, closer, marker
                cursor = closer + 1

    def _unstyled_nodes(self, start: int, end: int) -> list[_Node]:
        """Return the text, code spans and links in ``[start, end)``.

        No code span or link crosses ``start`` or ``end``, because no emphasis
        marker lies inside one.
        """
        nodes: list[_Node] = []
        cursor = start
        position = bisect_left(self.atom_starts, start)
        while position < len(self.atoms) and self.atoms[position][0] < end:
            atom_start, atom_end, element = self.atoms[position]
            if atom_start > cursor:
                nodes.append(self.text[cursor:atom_start])
            nodes.append(element)
            cursor = atom_end
            position += 1
        if cursor < end:
            nodes.append(self.text[cursor:end])
        return nodes


# Rendering

_CONSTRUCTORS: Mapping[str, VdomConstructor] = {
    "a": html.a,
    "code": html.code,
    "em": html.em,
    "pre": html.pre,
    "s": html.s,
    "strong": html.strong,
}

_HIGHLIGHTED_TAGS = frozenset(_EMPHASIS_TAGS.values())
"""Elements whose text can contain highlights: not code, code blocks or links."""


@functools.lru_cache(maxsize=128)
def _highlight_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compile a regex for whole-word, case-insensitive matches of ``words``.

    NOTE: whole words are delimited by ``\\w``, so a word inside unspaced text,
    such as Chinese or Japanese, never matches.
    """
    cleaned = {word.strip() for word in words if word.strip()}
    if not cleaned:
        return None
    # Longer words first, so that "chat room" wins over "chat" at the same position.
    alternatives = "|".join(re.escape(word) for word in sorted(cleaned, key=lambda w: (-len(w), w)))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _highlight(text: str, pattern: re.Pattern[str] | None) -> list[VdomChild]:
    if pattern is None:
        return [text]
    children: list[VdomChild] = []
    cursor = 0
    for match in pattern.finditer(text):
        start, end = match.span()
        if not (_is_grapheme_boundary(text, start) and _is_grapheme_boundary(text, end)):
            continue
        if start > cursor:
            children.append(text[cursor:start])
        children.append(html.mark({}, match.group()))
        cursor = end
    if cursor < len(text):
        children.append(text[cursor:])
    return children


def _to_vdom(node: _Node, pattern: re.Pattern[str] | None) -> list[VdomChild]:
    if isinstance(node, str):
        return _highlight(node, pattern)
    inner_pattern = pattern if node.tag in _HIGHLIGHTED_TAGS else None
    children = [child for item in node.children for child in _to_vdom(item, inner_pattern)]
    return [_CONSTRUCTORS[node.tag](dict(node.attributes), *children)]
