"""A linear-time SPARQL tokenizer for the facts that must be known before (or without) parsing.

It never fails: any character it does not understand is a one-character ``punct`` token.
It is what makes hostile input cheap to diagnose (size, depth, update keywords, undeclared
prefixes, SERVICE/FROM clauses, query-service dialect) and what maps positions back to the
user's text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
              |'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<badstring>['"][^\n]*)
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][A-Za-z0-9_\u00B7-\uFFFF]+)
  | (?P<bnode>_:[\w\-.\u00B7-\uFFFF]*)
  | (?P<pname>(?:[A-Za-z\u00C0-\uFFFF][\w\-.\u00B7-\uFFFF]*)?:(?:[\w\-.:%\u00B7-\uFFFF]|\\.)*)
  | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

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


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        return self.text.upper()


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


def tokenize(text: str) -> list[Token]:
    """Every token but whitespace and comments."""
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if kind in ("ws", "comment"):
            continue
        value = match.group()
        if kind in ("pname", "bnode") and value.endswith(".") and not value.endswith("\\."):
            # A triple's terminating dot is not part of the name (wd:Q5.)
            stripped = value.rstrip(".")
            tokens.append(Token(kind, stripped, match.start()))
            for i in range(len(stripped), len(value)):
                tokens.append(Token("punct", ".", match.start() + i))
            continue
        tokens.append(Token(kind, value, match.start()))
    return tokens


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
    tokens = tokenize(text)
    facts = LexicalFacts(tokens)
    level = 0
    for token in tokens:
        if token.kind == "punct":
            if token.text in _OPEN:
                level += 1
                if level > facts.depth:
                    facts.depth, facts.depth_offset = level, token.start
            elif token.text in _CLOSE:
                level = max(0, level - 1)
        elif token.kind == "badstring":
            facts.unterminated.append(token)
    facts.operand_iris = _iris_after_operands(tokens)

    i = 0
    # Prologue: PREFIX/BASE declarations.
    while i < len(tokens):
        upper = tokens[i].upper if tokens[i].kind == "word" else ""
        if upper == "PREFIX" and i + 2 < len(tokens) and tokens[i + 1].kind == "pname":
            name = tokens[i + 1].text
            if name.endswith(":") and tokens[i + 2].kind == "iri":
                facts.declared_prefixes[name[:-1]] = tokens[i + 2].text[1:-1]
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
            if upper == "SERVICE":
                k = j + 1
                if k < len(tokens) and tokens[k].upper == "SILENT":
                    k += 1
                if k < len(tokens):
                    facts.services.append(tokens[k])
            elif upper == "FROM":
                k = j + 1
                if k < len(tokens) and tokens[k].upper == "NAMED":
                    k += 1
                if k < len(tokens):
                    facts.datasets.append(tokens[k])
            elif upper == "INCLUDE" and j + 1 < len(tokens) and tokens[j + 1].text == "%":
                end = tokens[j + 2].end if j + 2 < len(tokens) else tokens[j + 1].end
                facts.includes.append(Token("include", text[token.start:end], token.start))
    return facts


def expand_name(name: str, prefixes: Mapping[str, str],
                declared: Mapping[str, str] | None = None) -> str:
    """The IRI of ``<iri>`` or ``prefix:local``; the query's own ``declared`` prefixes win.

    Anything else (a variable such as ``SERVICE ?s``, an unknown prefix) comes back as given.
    """
    if name.startswith("<") and name.endswith(">"):
        return name[1:-1]
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
