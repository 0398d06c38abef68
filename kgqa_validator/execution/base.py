"""What every executor does before running anything: the refusal rules, then the prefixes."""

from __future__ import annotations

import logging

from kgqa_validator.config import Settings
from kgqa_validator.execution.refusal import refusal_reason, with_prefixes
from kgqa_validator.execution.results import make_execution
from kgqa_validator.parsing.lexer import analyse
from kgqa_validator.types import Execution, Form, Mode, ParsedQuery

log = logging.getLogger(__name__)


class Executor:
    """Runs candidate queries somewhere.  Subclasses implement :meth:`run`.

    ``name`` is what :attr:`Execution.endpoint` reports.  :meth:`execute` is the entry point
    for candidates (refusal rules first, nothing sent when they refuse); :meth:`run` is for
    the library's own trusted queries (the label source) and for subclasses.
    """

    name = "executor"
    answers_label_service = False

    def execute(self, text: str, parsed: ParsedQuery, settings: Settings) -> Execution:
        """Run one candidate, unless the refusal rules forbid it (then ``status="refused"``)."""
        if len(text) > settings.max_query_chars:
            # Checked before anything looks at the text: no tokenizer, no regex, no request.
            too_long = (f"the query is {len(text):,} characters; the limit is "
                        f"{settings.max_query_chars:,}")
            return make_execution("refused", self.name, message=too_long)
        facts = analyse(text)
        reason = refusal_reason(
            text, parsed, settings.prefixes, facts=facts, max_chars=settings.max_query_chars,
            allow_label_service=settings.mode is Mode.WIKIDATA and self.answers_label_service)
        if reason is not None:
            log.info("not sending candidate to %s: %s", self.name, reason)
            return make_execution("refused", self.name, message=reason)
        return self.run(with_prefixes(text, settings.prefixes, facts), parsed.form,
                        settings.max_rows)

    def run(self, query: str, form: Form, max_rows: int) -> Execution:
        """Run a query that already passed the refusal rules (or is the library's own)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release processes or connections (idempotent)."""
