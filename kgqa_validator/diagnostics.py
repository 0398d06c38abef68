"""Building :class:`~kgqa_validator.types.Diagnostic` values: public API for every producer.

Every stage that reports a problem with a candidate (the parser, the lints, the label
checks, the scorers and third-party plugins) builds its diagnostics here, so that all of
them carry the same kind of span (1-based line and column, 0-based offset, length into the
candidate's text) and the same excerpt rules (the text at the span, at most 80 characters).

Two ways in:

* :class:`DiagnosticBuilder` collects the diagnostics of one text with positions, for a
  producer that reports several problems of one candidate::

      out = DiagnosticBuilder(candidate.sparql, "my_plugin")
      out.add("no_minus", Severity.WARNING, "MINUS is slow here", offset, length=5)
      return out.items

* :func:`diagnostic` builds a single one, with or without a position (``text`` and
  ``offset`` both given, or neither)::

      diagnostic("no_minus", Severity.WARNING, "MINUS is slow here", producer="my_plugin")
"""

from __future__ import annotations

from kgqa_validator.parsing.lexer import LineIndex
from kgqa_validator.types import Diagnostic, Severity, Span

__all__ = ["DiagnosticBuilder", "diagnostic", "excerpt_at"]

EXCERPT_CHARS = 80


def excerpt_at(text: str, offset: int, limit: int = 40) -> str:
    """The token starting at ``offset`` (to the next whitespace), at most ``limit`` chars."""
    end = offset
    while end < len(text) and end - offset < limit and not text[end].isspace():
        end += 1
    return text[offset:end] if end > offset else text[offset:offset + 1]


class DiagnosticBuilder:
    """Collects diagnostics with positions in the user's text.

    ``add`` clamps the offset into the text; without an ``excerpt`` it quotes the token at
    the offset (:func:`excerpt_at`).  ``items`` is the list to return from a hook.
    """

    def __init__(self, text: str, producer: str) -> None:
        self.text = text
        self.producer = producer
        self._lines: LineIndex | None = None  # built on the first positioned diagnostic
        self.items: list[Diagnostic] = []

    @property
    def lines(self) -> LineIndex:
        if self._lines is None:
            self._lines = LineIndex(self.text)
        return self._lines

    def span(self, offset: int, length: int = 1) -> Span:
        """The span of ``length`` characters at ``offset`` (clamped into the text)."""
        offset = max(0, min(offset, len(self.text)))
        line, column = self.lines.position(offset)
        return Span(line, column, offset, length)

    def add(self, code: str, severity: Severity, message: str, offset: int | None = None,
            length: int = 1, excerpt: str | None = None) -> Diagnostic:
        span = None
        if offset is not None:
            span = self.span(offset, length)
            if excerpt is None:
                excerpt = excerpt_at(self.text, span.offset)
        item = Diagnostic(code, severity, message, span, (excerpt or "")[:EXCERPT_CHARS],
                          self.producer)
        self.items.append(item)
        return item

    @property
    def has_error(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)


def diagnostic(code: str, severity: Severity, message: str, *, producer: str,
               text: str | None = None, offset: int | None = None, length: int = 1,
               excerpt: str | None = None) -> Diagnostic:
    """One diagnostic; positioned when both ``text`` and ``offset`` are given."""
    if text is None or offset is None:
        return Diagnostic(code, severity, message, None, (excerpt or "")[:EXCERPT_CHARS], producer)
    return DiagnosticBuilder(text, producer).add(code, severity, message, offset, length, excerpt)
