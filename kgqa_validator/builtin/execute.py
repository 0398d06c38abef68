"""Built-in ``kgqa_execute``: run a candidate with the configured executor.

See :mod:`kgqa_validator.execution` for the executors, the refusal rules (nothing is sent
for update operations, FROM, or SERVICE other than the query service's label service) and the
politeness rules; :mod:`kgqa_validator.execution.results` for statuses and diagnostics.
Registered ``trylast``: an installed executor plugin answers first.
"""

from __future__ import annotations

from kgqa_validator.config import Settings
from kgqa_validator.execution import executor_for
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.types import Candidate, Execution, ParsedQuery


@hookimpl(trylast=True)
def kgqa_execute(candidate: Candidate, parsed: ParsedQuery, settings: Settings) -> Execution | None:
    return executor_for(settings).execute(candidate.sparql, parsed, settings)
