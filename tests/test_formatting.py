"""Tests for the message text formatting: markers, code, links, highlights and Unicode."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from html import escape

import pytest
from reactpy.types import VdomChild, VdomDict

from talkjs_components.components.formatting import format_message_text, message_plain_text

LINK_TARGET = "_blank"
LINK_REL = "noopener noreferrer nofollow"

ZWJ_FAMILY = "👩\u200d👩\u200d👧"
FLAG = "🇮🇱"
THUMBS_UP_MEDIUM = "👍🏽"
RED_HEART = "❤\ufe0f"
PERSIAN_WORD = "می\u200cخواهم"  # noqa: RUF001 - Persian letters are the point of the test
KEYCAP_ASTERISK = "*\ufe0f\u20e3"
E_ACUTE = "e\u0301"

ALLOWED_TAGS = frozenset({"a", "code", "em", "mark", "pre", "s", "strong"})
EXTENDING_CHARACTERS = frozenset("\u200d\u200c\ufe0f\u0301\u20e3\U0001f3fd")


def render(children: Sequence[VdomChild]) -> str:
    """Serialize VDOM children as compact HTML with escaped text.

    Keys are left out. Links must have the fixed ``target`` and ``rel``, which
    are checked here and then left out, so that expectations show only ``href``.
    """
    return "".join(_render_child(child) for child in children)


def as_element(child: VdomChild) -> VdomDict:
    """Return ``child`` as a VDOM element, failing the test if it is another kind of child."""
    assert isinstance(child, VdomDict), f"expected a str or VdomDict child, got {child!r}"
    return child


def _render_child(child: VdomChild) -> str:
    if isinstance(child, str):
        return escape(child, quote=False)
    element = as_element(child)
    tag = element["tagName"]
    attributes = dict(element.get("attributes", {}))
    attributes.pop("key", None)
    if tag == "a":
        assert attributes.pop("target") == LINK_TARGET
        assert attributes.pop("rel") == LINK_REL
    attribute_text = "".join(f' {name}="{escape(value)}"' for name, value in attributes.items())
    return f"<{tag}{attribute_text}>{render(element.get('children', []))}</{tag}>"


def text_leaves(children: Sequence[VdomChild]) -> Iterator[str]:
    """Yield the text nodes of VDOM children in document order."""
    for child in children:
        if isinstance(child, str):
            yield child
        else:
            yield from text_leaves(as_element(child).get("children", []))


def hrefs(children: Sequence[VdomChild]) -> Iterator[str]:
    for child in children:
        if isinstance(child, str):
            continue
        element = as_element(child)
        if element["tagName"] == "a":
            yield element["attributes"]["href"]
        yield from hrefs(element.get("children", []))


def tag_names(children: Sequence[VdomChild]) -> Iterator[str]:
    for child in children:
        if not isinstance(child, str):
            element = as_element(child)
            yield element["tagName"]
            yield from tag_names(element.get("children", []))


def link(url: str) -> str:
    return f'<a href="{escape(url)}">{escape(url, quote=False)}</a>'


EXAMPLE = "https://example.com"
WIKIPEDIA = "https://en.wikipedia.org/wiki/Python_(programming_language)"

MARKER_CASES = [
    ("", ""),
    ("plain text", "plain text"),
    ("*bold*", "<strong>bold</strong>"),
    ("_italic_", "<em>italic</em>"),
    ("~gone~", "<s>gone</s>"),
    ("`code`", "<code>code</code>"),
    ("a *b c* d", "a <strong>b c</strong> d"),
    ("*a*_b_~c~", "<strong>a</strong><em>b</em><s>c</s>"),
    ("(*a*), [_b_]!", "(<strong>a</strong>), [<em>b</em>]!"),
    ("¡*hola*!", "¡<strong>hola</strong>!"),
    ("line 1\n*line 2*", "line 1\n<strong>line 2</strong>"),
    ("*a*b*", "<strong>a*b</strong>"),
    ("*a**b*", "<strong>a**b</strong>"),
]

NESTING_CASES = [
    ("*_both_*", "<strong><em>both</em></strong>"),
    ("_*both*_", "<em><strong>both</strong></em>"),
    ("~*_all_*~", "<s><strong><em>all</em></strong></s>"),
    ("*a ~b~ c*", "<strong>a <s>b</s> c</strong>"),
    ("*a *b* c*", "<strong>a *b</strong> c*"),
    ("*a _b* c_", "<strong>a _b</strong> c_"),
]

UNBALANCED_CASES = [
    ("*bold", "*bold"),
    ("bold*", "bold*"),
    ("* not bold *", "* not bold *"),
    ("*not bold *", "*not bold *"),
    ("*", "*"),
    ("**", "**"),
    ("***", "***"),
    ("**bold**", "**bold**"),
    ("~~gone~~", "~~gone~~"),
    ("`", "`"),
    ("``", "``"),
    ("*a\nb*", "*a\nb*"),
    ("_a\n_", "_a\n_"),
]

WORD_BOUNDARY_CASES = [
    ("snake_case_name", "snake_case_name"),
    ("__init__", "__init__"),
    ("2*3*4", "2*3*4"),
    ("a_b", "a_b"),
    ("_a_b", "_a_b"),
    ("x *y*z", "x *y*z"),
    ("x*y* z", "x*y* z"),
    ("~/path~x", "~/path~x"),
    ("it's *fine*", "it's <strong>fine</strong>"),
]

CODE_SPAN_CASES = [
    ("`*not bold*`", "<code>*not bold*</code>"),
    ("`https://example.com`", "<code>https://example.com</code>"),
    ("`<b>`", "<code>&lt;b&gt;</code>"),
    ("*see `x*y` now*", "<strong>see <code>x*y</code> now</strong>"),
    ("*a `b* c`", "*a <code>b* c</code>"),
    ("`a` and `b`", "<code>a</code> and <code>b</code>"),
    ("`a`b`", "<code>a`b</code>"),
    ("`a\nb`", "`a\nb`"),
    ("``not code``", "``not code``"),
    ("` spaced `", "` spaced `"),
]

FENCED_BLOCK_CASES = [
    ("```*not bold* https://x.com```", "<pre><code>*not bold* https://x.com</code></pre>"),
    ("```\nline 1\n  _line_ 2\n```", "<pre><code>line 1\n  _line_ 2</code></pre>"),
    ("```\r\ncode\r\n```", "<pre><code>code</code></pre>"),
    (
        "```\n\nkeeps inner blank lines\n\n```",
        "<pre><code>\nkeeps inner blank lines\n</code></pre>",
    ),
    ("```python\nprint(1)\n```", '<pre><code data-language="python">print(1)</code></pre>'),
    ("```c++\nint x;```", '<pre><code data-language="c++">int x;</code></pre>'),
    ("```python```", "<pre><code>python</code></pre>"),
    ("```two words\nx```", "<pre><code>two words\nx</code></pre>"),
    ("before ```x``` after", "before <pre><code>x</code></pre> after"),
    ("*a* ```b``` *c*", "<strong>a</strong> <pre><code>b</code></pre> <strong>c</strong>"),
    ("```a``` ```b```", "<pre><code>a</code></pre> <pre><code>b</code></pre>"),
    ("```<script>```", "<pre><code>&lt;script&gt;</code></pre>"),
    ("```unclosed *bold*", "```unclosed <strong>bold</strong>"),
    ("``````", "``````"),
    ("```   ```", "```   ```"),
    ("```\n```", "```\n```"),
]

URL_CASES = [
    (EXAMPLE, link(EXAMPLE)),
    ("http://example.com", link("http://example.com")),
    ("HTTPS://EXAMPLE.COM", link("HTTPS://EXAMPLE.COM")),
    ("http://localhost:8000/x?y=1#z", link("http://localhost:8000/x?y=1#z")),
    ("see https://example.com.", f"see {link(EXAMPLE)}."),
    ("https://example.com, then", f"{link(EXAMPLE)}, then"),
    ("https://example.com/a?b=c&d=e!?", link("https://example.com/a?b=c&d=e") + "!?"),
    ("Really https://example.com:", f"Really {link(EXAMPLE)}:"),
    ("'https://example.com'", f"'{link(EXAMPLE)}'"),
    ('"https://example.com"', f'"{link(EXAMPLE)}"'),
    ("«https://example.com»", f"«{link(EXAMPLE)}»"),
    ("<https://example.com>", f"&lt;{link(EXAMPLE)}&gt;"),
    ("(https://example.com)", f"({link(EXAMPLE)})"),
    (WIKIPEDIA, link(WIKIPEDIA)),
    (f"(see {WIKIPEDIA})", f"(see {link(WIKIPEDIA)})"),
    (f"{WIKIPEDIA}.", f"{link(WIKIPEDIA)}."),
    ("https://example.com/a_b_c~d*e", link("https://example.com/a_b_c~d*e")),
    ("https://example.com/it's", link("https://example.com/it's")),
    ("https://example.com/[1]", link("https://example.com/[1]")),
    ("[https://example.com]", f"[{link(EXAMPLE)}]"),
    ("https://he.wikipedia.org/wiki/שלום", link("https://he.wikipedia.org/wiki/שלום")),
    ("a https://a.com b http://b.org", f"a {link('https://a.com')} b {link('http://b.org')}"),
    ("*https://example.com*", f"<strong>{link(EXAMPLE)}</strong>"),
    ("_https://example.com/a_b_", f"<em>{link('https://example.com/a_b')}</em>"),
    ("[text](https://example.com)", f"[text]({link(EXAMPLE)})"),
    ("https://example.com/\u202eevil", f"{link('https://example.com/')}\u202eevil"),
    ("https://example.com/\u200bx", f"{link('https://example.com/')}\u200bx"),
    ("mailto:alice@example.com", link("mailto:alice@example.com")),
    ("Mail mailto:alice@example.com.", f"Mail {link('mailto:alice@example.com')}."),
    ("mailto:nobody", "mailto:nobody"),
    ("mailto:@example.com", "mailto:@example.com"),
    ("https://", "https://"),
    ("https://.", "https://."),
    ("http://:80/x", "http://:80/x"),
    ("http://example.com:99999", "http://example.com:99999"),
    ("http://[::1", "http://[::1"),
    ("xhttps://example.com", "xhttps://example.com"),
    ("1http://example.com", "1http://example.com"),
]

REJECTED_SCHEME_CASES = [
    ("javascript:alert(1)", "javascript:alert(1)"),
    ("JaVaScRiPt:alert(1)", "JaVaScRiPt:alert(1)"),
    ("java\tscript:alert(1)", "java\tscript:alert(1)"),
    (
        "data:text/html,<script>alert(1)</script>",
        "data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;",
    ),
    ("vbscript:msgbox(1)", "vbscript:msgbox(1)"),
    ("file:///etc/passwd", "file:///etc/passwd"),
    ("ftp://example.com", "ftp://example.com"),
    ("www.example.com", "www.example.com"),
    ("//example.com", "//example.com"),
    (
        '<a href="javascript:alert(1)">x</a>',
        '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;',
    ),
]

LITERAL_CASES = [
    ("<b>hi</b>", "&lt;b&gt;hi&lt;/b&gt;"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ("&amp; &lt;", "&amp;amp; &amp;lt;"),
    ("# Heading", "# Heading"),
    ("- item\n- item", "- item\n- item"),
    ("1. one\n2. two", "1. one\n2. two"),
    ("> quote", "&gt; quote"),
    ("[text](url)", "[text](url)"),
]

UNICODE_CASES = [
    (f"*{ZWJ_FAMILY}*", f"<strong>{ZWJ_FAMILY}</strong>"),
    (f"{ZWJ_FAMILY}*bold*", f"{ZWJ_FAMILY}<strong>bold</strong>"),
    (f"*{FLAG}*", f"<strong>{FLAG}</strong>"),
    (f"_{THUMBS_UP_MEDIUM}_", f"<em>{THUMBS_UP_MEDIUM}</em>"),
    (f"{RED_HEART}*love*", f"{RED_HEART}<strong>love</strong>"),
    (f"*{E_ACUTE}*", f"<strong>{E_ACUTE}</strong>"),
    (f"{E_ACUTE}*x*", f"{E_ACUTE}*x*"),
    ("*a*\u0301", "*a*\u0301"),
    ("*a*\U0001f3fd", "*a*\U0001f3fd"),
    (f"*a*{ZWJ_FAMILY}", f"<strong>a</strong>{ZWJ_FAMILY}"),
    (f"{KEYCAP_ASTERISK} and *b*", f"{KEYCAP_ASTERISK} and <strong>b</strong>"),
    (f"{KEYCAP_ASTERISK}a{KEYCAP_ASTERISK}", f"{KEYCAP_ASTERISK}a{KEYCAP_ASTERISK}"),
    ("\U0001f1ee*\U0001f1f1a*", "\U0001f1ee*\U0001f1f1a*"),
    ("*a\U0001f1ee*\U0001f1f1", "*a\U0001f1ee*\U0001f1f1"),
    ("`\u0301`", "`\u0301`"),
    ("```\u0301```", "```\u0301```"),
    (f"https://example.com/{ZWJ_FAMILY}", link(f"https://example.com/{ZWJ_FAMILY}")),
    ("*שלום* עולם", "<strong>שלום</strong> עולם"),
    ("_שלום_ ~עולם~.", "<em>שלום</em> <s>עולם</s>."),
    (f"_{PERSIAN_WORD}_", f"<em>{PERSIAN_WORD}</em>"),
    ("*سلام* دنیا", "<strong>سلام</strong> دنیا"),
    ("*مَرْحَبًا*", "<strong>مَرْحَبًا</strong>"),
    ("שלום https://example.com עולם", f"שלום {link(EXAMPLE)} עולם"),
    ("*漢字*", "<strong>漢字</strong>"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    MARKER_CASES
    + NESTING_CASES
    + UNBALANCED_CASES
    + WORD_BOUNDARY_CASES
    + CODE_SPAN_CASES
    + FENCED_BLOCK_CASES
    + URL_CASES
    + REJECTED_SCHEME_CASES
    + LITERAL_CASES
    + UNICODE_CASES,
)
def test_format_message_text_cases(text: str, expected: str) -> None:
    children = format_message_text(text)

    assert render(children) == expected
    assert "".join(text_leaves(children)) == message_plain_text(text)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("*bold* _italic_ ~gone~ `code`", "bold italic gone code"),
        ("*_both_*", "both"),
        ("2*3*4 snake_case", "2*3*4 snake_case"),
        ("*unbalanced", "*unbalanced"),
        ("```python\nprint(1)\n```", "print(1)"),
        ("see https://example.com.", "see https://example.com."),
        ("<b>hi</b>", "<b>hi</b>"),
        (
            f"*{ZWJ_FAMILY}* _{FLAG}_ ~{THUMBS_UP_MEDIUM}~ `{E_ACUTE}`",
            f"{ZWJ_FAMILY} {FLAG} {THUMBS_UP_MEDIUM} {E_ACUTE}",
        ),
        ("*שלום* _עולם_", "שלום עולם"),
    ],
)
def test_message_plain_text_strips_markers(text: str, plain: str) -> None:
    assert message_plain_text(text) == plain


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        ("hello world", ["world"], "hello <mark>world</mark>"),
        (
            "Hello HELLO hello",
            ["hello"],
            "<mark>Hello</mark> <mark>HELLO</mark> <mark>hello</mark>",
        ),
        ("ÉCOLE école", ["école"], "<mark>ÉCOLE</mark> <mark>école</mark>"),
        ("worldwide world", ["world"], "worldwide <mark>world</mark>"),
        ("snake_case case", ["case"], "snake_case <mark>case</mark>"),
        ("c++ and c", ["c++"], "<mark>c++</mark> and c"),
        ("axb a.b", ["a.b"], "axb <mark>a.b</mark>"),
        ("cost $5 (x|y)", ["$5", "x|y"], "cost <mark>$5</mark> (<mark>x|y</mark>)"),
        ("[a] a", ["[a]"], "<mark>[a]</mark> a"),
        ("chat room chat", ["chat", "chat room"], "<mark>chat room</mark> <mark>chat</mark>"),
        ("*hello* world", ["hello"], "<strong><mark>hello</mark></strong> world"),
        ("_say hello there_", ["hello"], "<em>say <mark>hello</mark> there</em>"),
        ("`hello` hello", ["hello"], "<code>hello</code> <mark>hello</mark>"),
        ("```hello```", ["hello"], "<pre><code>hello</code></pre>"),
        ("https://example.com/hello", ["hello"], link("https://example.com/hello")),
        ("hello", ["", "   "], "hello"),
        ("a hello b", [" hello "], "a <mark>hello</mark> b"),
        ("שלום עולם", ["עולם"], "שלום <mark>עולם</mark>"),
        ("cafe\u0301 cafe", ["cafe"], "cafe\u0301 <mark>cafe</mark>"),
        (f"{ZWJ_FAMILY} 👧", ["👧"], f"{ZWJ_FAMILY} <mark>👧</mark>"),
        (FLAG * 2, ["\U0001f1f1\U0001f1ee"], FLAG * 2),
        (FLAG * 2, [FLAG], f"<mark>{FLAG}</mark><mark>{FLAG}</mark>"),
        (f"{THUMBS_UP_MEDIUM} 👍", ["👍"], f"{THUMBS_UP_MEDIUM} <mark>👍</mark>"),
    ],
)
def test_highlighted_words(text: str, words: list[str], expected: str) -> None:
    children = format_message_text(text, highlighted_words=words)

    assert render(children) == expected
    assert "".join(text_leaves(children)) == message_plain_text(text)


def test_highlighted_words_rejects_str() -> None:
    with pytest.raises(
        TypeError, match=re.escape("not the str 'hello'. Wrap a single word in a list.")
    ):
        format_message_text("hello", highlighted_words="hello")


def test_top_level_elements_have_unique_keys() -> None:
    children = format_message_text("*a* _b_ https://example.com `c` d", highlighted_words=["d"])
    keys = [
        as_element(child)["attributes"]["key"] for child in children if not isinstance(child, str)
    ]

    assert len(keys) == 5
    assert len(set(keys)) == len(keys)


def test_large_message_formats() -> None:
    unit = "*bold* _it_ ~s~ `c` https://example.com/a_(b) snake_case *open _x\n"
    text = unit * (20_000 // len(unit) + 1)

    children = format_message_text(text, highlighted_words=["bold", "x"])

    assert len(text) > 20_000
    assert "".join(text_leaves(children)) == message_plain_text(text)
    assert sum(1 for _ in hrefs(children)) == text.count("https://")


def test_large_message_of_unmatched_markers() -> None:
    prefix = "*a _b ~c `d " * 2_000
    text = prefix + "https://example.com/" + ")" * 5_000

    children = format_message_text(text)

    assert render(children) == prefix + link("https://example.com/") + ")" * 5_000


def is_subsequence(part: str, whole: str) -> bool:
    characters = iter(whole)
    return all(character in characters for character in part)


def regional_indicator_count(text: str) -> int:
    return sum(1 for character in text if 0x1F1E6 <= ord(character) <= 0x1F1FF)


RANDOM_ALPHABET = [
    "a", "b", "é", "ש", " ", "\n", "*", "_", "~", "`", "```", ".", ")", "(", ":",
    "https://x.y/", "mailto:a@b.c", "javascript:", "data:", "<b>",
    ZWJ_FAMILY, FLAG, THUMBS_UP_MEDIUM, RED_HEART, "\u0301", "\u200d", "\ufe0f",
]  # fmt: skip


def test_random_texts_keep_invariants() -> None:
    generator = random.Random(20240611)
    for _ in range(3_000):
        text = "".join(generator.choices(RANDOM_ALPHABET, k=generator.randint(0, 30)))

        children = format_message_text(text, highlighted_words=["a", "*"])
        leaves = list(text_leaves(children))
        output = "".join(leaves)

        assert output == message_plain_text(text), text
        assert "" not in leaves, text
        assert set(tag_names(children)) <= ALLOWED_TAGS, text
        assert is_subsequence(output, text), text
        for href in hrefs(children):
            assert href.lower().startswith(("http://", "https://", "mailto:")), text
        # An extending character always belongs to the character before it, and
        # the alphabet contains regional indicators only as whole flags.
        for leaf in leaves[1:]:
            assert leaf[0] not in EXTENDING_CHARACTERS, (text, leaves)
        for leaf in leaves[:-1]:
            assert not leaf.endswith("\u200d"), (text, leaves)
        for leaf in leaves:
            assert regional_indicator_count(leaf) % 2 == 0, (text, leaves)
