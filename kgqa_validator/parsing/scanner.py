"""The SPARQL scanner: text to tokens, in linear time, as pyoxigraph reads the terminals.

It never fails: any character it does not understand is a one-character ``punct`` token.
Plugins use it through :mod:`kgqa_validator.parsing.lexer`, which re-exports :class:`Token`,
:func:`tokenize`, :func:`comments` and :func:`unescape`.

It reads the terminals of SPARQL 1.1 (section 19.8) as pyoxigraph does, because the refusal
rules trust what it sees: comments end at a line feed *or* a carriage return; strings take
only the escapes of the grammar; IRIs may hold ``\\uXXXX`` / ``\\UXXXXXXXX`` code point escapes
(``<urn\\u003Ax>``), which, like pyoxigraph (0.5) and the W3C tests' "escapes in URIs and
strings only", it decodes only inside IRIs and strings.  The SPARQL 1.1 text (section 19.2)
and Java stores (Blazegraph, RDF4J) decode escapes over the whole query before parsing; where
the two readings could tokenize differently (an escape outside a string or IRI, one that
decodes to a quote, ``\\``, ``>`` or a line end) :func:`escape_conflicts` reports it, and the
query is refused rather than guessed at.

It is hand-written rather than one regular expression with alternatives, so that every
character is looked at a bounded number of times: a failed prefixed-name match used to be
retried at every position of a long run (``a.a.a.``, ``éééé``), which was quadratic.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from typing import NamedTuple

_HEX4 = r"[0-9A-Fa-f]{4}"
_UCHAR = rf"\\u{_HEX4}|\\U{_HEX4}{_HEX4}"
_ECHAR = r"""\\[tbnrf"'\\]"""
# Each alternative starts with a different character, so no pattern backtracks more than
# once over what it read.
_LONG = {
    "'": re.compile(rf"'''(?:[^'\\]|{_ECHAR}|{_UCHAR}|'(?!''))*'''"),
    '"': re.compile(rf'"""(?:[^"\\]|{_ECHAR}|{_UCHAR}|"(?!""))*"""'),
}
_SHORT = {
    "'": re.compile(rf"'(?:[^'\\\n\r]|{_ECHAR}|{_UCHAR})*'"),
    '"': re.compile(rf'"(?:[^"\\\n\r]|{_ECHAR}|{_UCHAR})*"'),
}
_LINE_REST = re.compile(r"[^\n\r]*")
_WS = re.compile(r"[ \t\r\n]+")
_IRI = re.compile(rf"<(?:[^<>\"{{}}|^`\\\x00-\x20]|{_UCHAR})*>")
_VARNAME = re.compile(r"[A-Za-z0-9_\u00B7-\uFFFF\U00010000-\U000EFFFF]+")
_BNODE = re.compile(r"_:[\w\-.\u00B7-\uFFFF\U00010000-\U000EFFFF]*")
_NAME_RUN = re.compile(r"[\w\-.\u00B7-\uFFFF\U00010000-\U000EFFFF]*")
_LOCAL = re.compile(r"(?:[\w\-.:\u00B7-\uFFFF\U00010000-\U000EFFFF]|%[0-9A-Fa-f]{2}"
                    r"|\\[_~.\-!$&'()*+,;=/?#@%])*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*[eE][+-]?[0-9]+|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
                     r"|[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))")
_BACKSLASHES = re.compile(r"\\+")
_ANY_ESCAPE = re.compile(r"\\(?:u+([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))")


class Token(NamedTuple):
    """A token; a named tuple because a long query has a hundred thousand of them."""

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        return self.text.upper()



# Characters that are always a token of their own ('.' and '<' may start a number or an IRI).
_PUNCT_ONLY = frozenset("{}()[],;*+!=/|^&@%-")
_DIGITS = frozenset("0123456789")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# The name classes reach into the supplementary planes as SPARQL's PN_CHARS_BASE does
# (U+10000-U+EFFFF), so that a name is one token for the lexer exactly when it is for pyoxigraph.


def tokenize(text: str) -> list[Token]:
    """Every token but whitespace and comments."""
    return list(scan(text)[0])


def comments(text: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` of every comment."""
    return scan(text)[1]


@lru_cache(maxsize=16)
def scan(text: str) -> tuple[tuple[Token, ...], tuple[tuple[int, int], ...]]:
    """Tokens and comment spans; cached, because a candidate's text is tokenized by the
    parser, the lints and the refusal rules in turn."""
    tokens: list[Token] = []
    spans: list[tuple[int, int]] = []
    append = tokens.append
    n = len(text)
    i = 0
    # The run of name characters that starts at or before i ends at run_end; whether a ':'
    # follows it is remembered, so that no position of a long run scans the run again.
    run_end = -1
    run_colon = False
    # A long string that is never closed is scanned to the end of the text; after a few such
    # scans, triple quotes are read as short strings (the query is invalid anyway).
    long_budget = 4 * n + 64
    while i < n:
        c = text[i]
        if c in _PUNCT_ONLY:  # the common one-character tokens, without a pattern
            append(Token("punct", c, i))
            i += 1
        elif c == "." and not (i + 1 < n and text[i + 1] in _DIGITS):
            append(Token("punct", c, i))
            i += 1
        elif c in " \t\r\n":
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
        elif c == "#":
            end = _LINE_REST.match(text, i).end()  # type: ignore[union-attr]
            spans.append((i, end))
            i = end
        elif c == "'" or c == '"':
            match = None
            if long_budget > 0 and text.startswith(c * 3, i):
                match = _LONG[c].match(text, i)
                if match is None:
                    long_budget -= n - i
            if match is None:
                match = _SHORT[c].match(text, i)
            if match is not None:
                append(Token("string", match.group(), i))
                i = match.end()
            else:
                end = _LINE_REST.match(text, i).end()  # type: ignore[union-attr]
                append(Token("badstring", text[i:end], i))
                i = end
        elif c == "<":
            match = _IRI.match(text, i)
            end = match.end() if match is not None else i + 1
            append(Token("iri" if match is not None else "punct", text[i:end], i))
            i = end
        elif c == "?" or c == "$":
            match = _VARNAME.match(text, i + 1)
            end = match.end() if match is not None else i + 1
            append(Token("var" if match is not None else "punct", text[i:end], i))
            i = end
        elif c == "_" and text.startswith("_:", i):
            end = _BNODE.match(text, i).end()  # type: ignore[union-attr]
            i = _name_token(tokens, "bnode", text, i, end)
        elif c == ":" or c in _ASCII_LETTERS or "\u00C0" <= c <= "\uFFFF" \
                or "\U00010000" <= c <= "\U000EFFFF":  # a name starts
            if c == ":":
                colon_at = i
            else:
                if i >= run_end:
                    run_end = _NAME_RUN.match(text, i).end()  # type: ignore[union-attr]
                    run_colon = text.startswith(":", run_end)
                colon_at = run_end if run_colon else -1
            if colon_at >= 0:
                end = _LOCAL.match(text, colon_at + 1).end()  # type: ignore[union-attr]
                i = _name_token(tokens, "pname", text, i, end)
            else:
                match = _WORD.match(text, i)
                end = match.end() if match is not None else i + 1
                append(Token("word" if match is not None else "punct", text[i:end], i))
                i = end
        else:
            match = _NUMBER.match(text, i) if c in _DIGITS or (
                c == "." and i + 1 < n and text[i + 1] in _DIGITS) else None
            end = match.end() if match is not None else i + 1
            append(Token("number" if match is not None else "punct", text[i:end], i))
            i = end
    return tuple(tokens), tuple(spans)


def _name_token(tokens: list[Token], kind: str, text: str, start: int, end: int) -> int:
    """Append the name ``text[start:end]``; a triple's terminating dot is not part of it
    (``wd:Q5.``), an escaped one is (``ex:a\\.``)."""
    value_end = end
    while value_end > start + 1 and text[value_end - 1] == "." and text[value_end - 2] != "\\":
        value_end -= 1
    tokens.append(Token(kind, text[start:value_end], start))
    for k in range(value_end, end):
        tokens.append(Token("punct", ".", k))
    return end


def unescape(text: str) -> str:
    """``text`` with its ``\\uXXXX`` / ``\\UXXXXXXXX`` escapes decoded (as inside an IRI)."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _code_point(m) or m.group(), text)


def _code_point(match: re.Match[str]) -> str | None:
    value = int(match.group(1) or match.group(2), 16)
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return None
    return chr(value)


# What a decoded escape must not be, per token kind, for the two readings to agree.
_IRI_UNSAFE = frozenset('<>"{}|^`\\') | frozenset(chr(c) for c in range(0x21))
_LINE_ENDS = frozenset("\n\r")


def escape_conflicts(text: str, tokens: list[Token] | tuple[Token, ...],
                     comment_spans: tuple[tuple[int, int], ...]) -> list[tuple[int, str]]:
    """``(offset, why)`` of every code point escape that pyoxigraph and the SPARQL 1.1 text
    read differently (see the module's docstring).

    A ``\\`` begins an escape when an even number of backslashes precedes it (``\\\\u0041``
    is a backslash and ``u0041`` for both).  ``\\uu0041`` counts too: Java reads it as an escape.
    """
    if "\\u" not in text and "\\U" not in text:
        return []
    starts = [t.start for t in tokens]
    comment_starts = [s for s, _ in comment_spans]
    found: list[tuple[int, str]] = []
    for run in _BACKSLASHES.finditer(text):
        if len(run.group()) % 2 == 0:
            continue
        at = run.end() - 1
        match = _ANY_ESCAPE.match(text, at)
        if match is None:
            continue
        char = _code_point(match)
        if char is None:
            continue  # not a code point: pyoxigraph rejects it where it counts
        k = bisect_right(starts, at) - 1
        token = tokens[k] if k >= 0 and tokens[k].start <= at < tokens[k].end else None
        if token is None:
            c = bisect_right(comment_starts, at) - 1
            if c >= 0 and comment_spans[c][0] <= at < comment_spans[c][1]:
                if char in _LINE_ENDS:
                    found.append((at, "decodes to a line end inside a comment"))
                continue
            found.append((at, "is outside a string or IRI"))
        elif token.kind == "string":
            quote = token.text[0]
            long_form = len(token.text) >= 6 and token.text.startswith(quote * 3)
            if char in (quote, "\\") or (char in _LINE_ENDS and not long_form):
                found.append((at, f"decodes to {char!r} inside a string"))
        elif token.kind == "iri":
            if char in _IRI_UNSAFE:
                found.append((at, f"decodes to {char!r}, which an IRI cannot hold"))
        else:
            found.append((at, "is outside a string or IRI"))
    return found
