"""The lexer: linear-time facts about a SPARQL text, before (or without) parsing it.

Public API for plugins (stable across minor versions): :func:`tokenize` and :class:`Token`
(kind, text, start offset; kinds ``word``, ``var``, ``pname``, ``iri``, ``string``,
``number``, ``bnode``, ``punct`` and ``badstring`` for an unterminated string), :func:`analyse`
and :class:`LexicalFacts` (declared prefixes, SERVICE/FROM targets, nesting depth, ...),
:func:`matching_bracket`, :func:`clause_target`, :func:`expand_name` (the IRI of ``<iri>`` or
``prefix:local``, the query's own PREFIX lines first), :class:`LineIndex` (offsets to line
and column) and the keyword sets.  Tokens never come from comments, strings or IRIs, so a
check that reads tokens is never fooled by ``# SERVICE`` or ``"FROM"``; tokenizing is
cached, so a plugin that tokenizes a candidate again pays nothing.

It is what makes hostile input cheap to diagnose (size, depth, update keywords, undeclared
prefixes, SERVICE/FROM clauses, query-service dialect) and what maps positions back to the
user's text.  How text becomes tokens is :mod:`.scanner`'s concern.

Example::

    >>> from kgqa_validator.parsing.lexer import analyse, expand_name
    >>> facts = analyse("PREFIX ex: <http://ex/> SELECT * WHERE { SERVICE ex:s { ?a ?b ?c } }")
    >>> [t.text for t in facts.services], expand_name("ex:s", {}, facts.declared_prefixes)
    (['ex:s'], 'http://ex/s')
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field

from kgqa_validator.parsing.scanner import Token, comments, escape_conflicts, scan, tokenize, unescape

__all__ = [
    "AGGREGATES", "QUERY_KEYWORDS", "SPARQL_WORDS", "UPDATE_KEYWORDS", "LexicalFacts",
    "LineIndex", "Token", "analyse", "clause_target", "comments", "escape_conflicts",
    "expand_name", "matching_bracket", "tokenize", "unescape",
]

UPDATE_KEYWORDS = frozenset(
    {"INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY"}
)
QUERY_KEYWORDS = frozenset({"SELECT", "ASK", "CONSTRUCT", "DESCRIBE"})
AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX", "SAMPLE", "GROUP_CONCAT"})
SPARQL_WORDS = frozenset(
    """
    BASE PREFIX SELECT DISTINCT REDUCED AS CONSTRUCT WHERE DESCRIBE ASK FROM NAMED GROUP BY
    HAVING ORDER ASC DESC LIMIT OFFSET VALUES LOAD SILENT INTO CLEAR DROP CREATE ADD TO MOVE
    COPY INSERT DATA DELETE WITH USING DEFAULT GRAPH ALL OPTIONAL SERVICE BIND UNDEF MINUS
    UNION FILTER A IN NOT EXISTS SEPARATOR TRUE FALSE LATERAL INCLUDE
    STR LANG LANGMATCHES DATATYPE BOUND IRI URI BNODE RAND ABS CEIL FLOOR ROUND CONCAT
    STRLEN UCASE LCASE ENCODE_FOR_URI CONTAINS STRSTARTS STRENDS STRBEFORE STRAFTER YEAR
    MONTH DAY HOURS MINUTES SECONDS TIMEZONE TZ NOW UUID STRUUID MD5 SHA1 SHA256 SHA384
    SHA512 COALESCE IF STRLANG STRDT SAMETERM ISIRI ISURI ISBLANK ISLITERAL ISNUMERIC REGEX
    SUBSTR REPLACE TRIPLE SUBJECT PREDICATE OBJECT ISTRIPLE LANGDIR HASLANG HASLANGDIR
    STRLANGDIR ADJUST VERSION
    """.split()
) | AGGREGATES
"""Every keyword and built-in function name of SPARQL 1.1 (plus SPARQL 1.2 and the query
service's INCLUDE): a bare word outside this set is never valid."""
_OPEN = {"{": "}", "(": ")", "[": "]"}
_CLOSE = {"}", ")", "]"}



@dataclass
class LexicalFacts:
    """What the tokenizer learnt about a text; offsets are 0-based into that text."""

    tokens: list[Token]
    depth: int = 0
    depth_offset: int = 0
    first_keyword: Token | None = None
    declared_prefixes: dict[str, str] = field(default_factory=dict)
    prefixed_names: list[Token] = field(default_factory=list)
    services: list[Token] = field(default_factory=list)
    datasets: list[Token] = field(default_factory=list)
    named_subqueries: list[tuple[int, int, int, int]] = field(default_factory=list)
    includes: list[Token] = field(default_factory=list)
    hints: list[Token] = field(default_factory=list)
    unterminated: list[Token] = field(default_factory=list)
    operand_iris: list[Token] = field(default_factory=list)
    comments: tuple[tuple[int, int], ...] = ()
    escape_conflicts: list[tuple[int, str]] = field(default_factory=list)
    unbalanced: Token | None = None  # the first bracket that does not pair up
    words: set[str] = field(default_factory=set)  # every bare word, upper-cased



def matching_bracket(tokens: list[Token], open_index: int) -> int:
    """Index of the bracket closing ``tokens[open_index]``, or ``len(tokens)``."""
    level = 0
    for i in range(open_index, len(tokens)):
        text = tokens[i].text
        if tokens[i].kind != "punct":
            continue
        if text in _OPEN:
            level += 1
        elif text in _CLOSE:
            level -= 1
            if level == 0:
                return i
    return len(tokens)


_OPERANDS = frozenset({"var", "number", "string", "pname", "iri", "bnode"})


def _iris_after_operands(tokens: list[Token]) -> list[Token]:
    """IRIs that directly follow an operand inside an expression: ``FILTER(?x<?a&&?b>?y)``.

    The longest-token rule makes ``<?a&&?b>`` one IRI, so the filter is invalid; pyoxigraph's
    PEG parser has no separate tokenizer and reads ``<`` as "less than" there.  Expressions
    never juxtapose two terms, but patterns do (``?s <p> ?o``, collections, VALUES rows), so
    only parentheses known to hold an expression count: those after a keyword or function
    name (FILTER, BIND, STR, IN, SELECT ...) other than VALUES, and those nested in them.
    Anything doubtful counts as a pattern, so no valid query is flagged.
    """
    found: list[Token] = []
    stack: list[bool] = []  # per open bracket: does it hold an expression?
    for i, token in enumerate(tokens):
        if token.kind == "punct" and token.text in _OPEN:
            expression = False
            if token.text == "(":
                prev = tokens[i - 1] if i else None
                if stack and stack[-1]:
                    expression = True
                elif prev is not None and prev.kind == "word" and prev.upper not in ("VALUES", "A"):
                    expression = True
            stack.append(expression)
        elif token.kind == "punct" and token.text in _CLOSE:
            if stack:
                stack.pop()
        elif token.kind == "iri" and stack and stack[-1] and i:
            prev = tokens[i - 1]
            if prev.kind in _OPERANDS or (prev.kind == "punct" and prev.text == ")"):
                found.append(token)
    return found


def analyse(text: str) -> LexicalFacts:
    """Tokenize ``text`` and collect the lexical facts the checks need."""
    scanned, spans = scan(text)
    tokens = list(scanned)
    facts = LexicalFacts(tokens, comments=spans)
    facts.escape_conflicts = escape_conflicts(text, scanned, spans)
    opened: list[Token] = []
    for token in tokens:
        if token.kind == "punct":
            if token.text in _OPEN:
                opened.append(token)
                if len(opened) > facts.depth:
                    facts.depth, facts.depth_offset = len(opened), token.start
            elif token.text in _CLOSE:
                if not opened or _OPEN[opened[-1].text] != token.text:
                    facts.unbalanced = facts.unbalanced or token
                else:
                    opened.pop()
        elif token.kind == "badstring":
            facts.unterminated.append(token)
    if opened and facts.unbalanced is None:
        facts.unbalanced = opened[0]
    facts.operand_iris = _iris_after_operands(tokens)

    i = 0
    # Prologue: PREFIX/BASE declarations.
    while i < len(tokens):
        upper = tokens[i].upper if tokens[i].kind == "word" else ""
        if upper == "PREFIX" and i + 2 < len(tokens) and tokens[i + 1].kind == "pname":
            name = tokens[i + 1].text
            if name.endswith(":") and tokens[i + 2].kind == "iri":
                facts.declared_prefixes[name[:-1]] = unescape(tokens[i + 2].text[1:-1])
            i += 3
        elif upper == "BASE" and i + 1 < len(tokens):
            i += 2
        else:
            break
    # Query-service named subqueries: WITH { ... } AS %name, before the query proper.
    while (
        i + 1 < len(tokens) and tokens[i].kind == "word" and tokens[i].upper == "WITH"
        and tokens[i + 1].text == "{"
    ):
        close = matching_bracket(tokens, i + 1)
        end = close + 1
        if end + 2 < len(tokens) + 1 and end < len(tokens) and tokens[end].upper == "AS":
            end += 1
            if end < len(tokens) and tokens[end].text == "%":
                end += 1
            if end < len(tokens) and tokens[end].kind in ("word", "pname", "number"):
                end += 1
        body_start = tokens[i + 1].end
        body_end = tokens[close].start if close < len(tokens) else len(text)
        block_end = tokens[end - 1].end if end - 1 < len(tokens) else len(text)
        facts.named_subqueries.append((tokens[i].start, block_end, body_start, body_end))
        i = end
    for j in range(i, len(tokens)):
        if tokens[j].kind == "word":
            facts.first_keyword = tokens[j]
            break

    for j, token in enumerate(tokens):
        if token.kind == "pname":
            facts.prefixed_names.append(token)
            if token.text.lower().startswith("hint:"):
                facts.hints.append(token)
        elif token.kind == "word":
            upper = token.upper
            facts.words.add(upper)
            if upper in _CLAUSE_OPTION:
                target = clause_target(tokens, j)
                if target is not None:
                    (facts.services if upper == "SERVICE" else facts.datasets).append(target)
            elif upper == "INCLUDE" and j + 1 < len(tokens) and tokens[j + 1].text == "%":
                end = tokens[j + 2].end if j + 2 < len(tokens) else tokens[j + 1].end
                facts.includes.append(Token("include", text[token.start:end], token.start))
    return facts


_CLAUSE_OPTION = {"SERVICE": "SILENT", "FROM": "NAMED"}


def clause_target(tokens: list[Token], keyword: int) -> Token | None:
    """The target of the ``SERVICE`` or ``FROM`` keyword at ``tokens[keyword]``: the token
    after it, or after its ``SILENT`` / ``NAMED``; ``None`` at the end of the text."""
    k = keyword + 1
    option = _CLAUSE_OPTION.get(tokens[keyword].upper)
    if option is not None and k < len(tokens) and tokens[k].upper == option:
        k += 1
    return tokens[k] if k < len(tokens) else None


def expand_name(name: str, prefixes: Mapping[str, str],
                declared: Mapping[str, str] | None = None) -> str:
    """The IRI of ``<iri>`` or ``prefix:local``; the query's own ``declared`` prefixes win.

    Anything else (a variable such as ``SERVICE ?s``, an unknown prefix) comes back as given.
    """
    if name.startswith("<") and name.endswith(">"):
        return unescape(name[1:-1])
    prefix, sep, local = name.partition(":")
    if not sep:
        return name
    base = (declared or {}).get(prefix, prefixes.get(prefix))
    return f"{base}{local}" if base is not None else name


class LineIndex:
    """Maps 0-based offsets in a text to 1-based line and column numbers."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def offset(self, line: int, column: int) -> int:
        line = min(max(line, 1), len(self.starts))
        return self.starts[line - 1] + max(column, 1) - 1
