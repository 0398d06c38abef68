"""Built-in label source and id check: English labels from the endpoint, cached on disk.

**When it is active.**  In Wikidata mode, when ``settings.endpoint_labels`` or
``settings.check_unknown_ids`` is set, or when execution is on (``settings.execute``): a user
who lets the validator run queries on an endpoint has allowed it to talk to that endpoint, and
the encoder ranks far better with labels in the query text than with bare ids.  Otherwise it
sends nothing.  It asks whatever the executor is configured for: the HTTP endpoint, or the
embedded data file.

**What it sends.**  One SELECT per 200 ids, with the ids in a ``VALUES`` block, asking for
each id that is the subject of at least one triple and its English ``rdfs:label`` (else its
English ``schema:name``).  Answers
are kept in ``labels.sqlite3`` in the cache directory (labels 30 days, "does not exist"
1 day), so a second run asks nothing.  An id the endpoint has no triple about is *unknown*.

**unknown_id.**  With ``settings.check_unknown_ids`` (CLI ``--check-ids``), each valid
candidate's ids are looked up and each unknown one is reported as ``unknown_id`` with
severity **error**: a query naming an entity the graph does not have cannot answer a question
about it, and a generator that invents ids is the failure this check exists for.  (A
redirect, i.e. a merged item, is known: it has its ``owl:sameAs`` triple.)  When the lookup
itself fails (timeout, unreadable answer) the ids are not judged and an ``id_check_skipped``
note (info) says so.

**No network.**  When the endpoint cannot be reached at all (no route, refused, throttled
past the retries, blocked by a 403: an :class:`~kgqa_validator.errors.EndpointError`), labels
and id checks degrade instead of stopping the run: the ids are unchecked (``id_check_skipped``
notes, no labels from the endpoint), one warning on stderr says why, and no further lookup
is tried on that endpoint by this process.  A setting that cannot work anywhere (no
``--contact`` for Wikidata: :class:`~kgqa_validator.errors.ConfigurationError`) still raises.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kgqa_validator.config import Settings
from kgqa_validator.diagnostics import DiagnosticBuilder
from kgqa_validator.errors import EndpointError
from kgqa_validator.execution import endpoint_key, executor_for
from kgqa_validator.execution.cache import LabelCache, cache_dir_for
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.ids import WIKIDATA_ID
from kgqa_validator.parsing.lexer import tokenize
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
from kgqa_validator.types import Candidate, Diagnostic, Form, Mode, ParsedQuery, Question, Severity

log = logging.getLogger(__name__)

PRODUCER = "endpoint_labels"
BATCH = 200
_RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#"
# Endpoints found unreachable by this process, with why: asked no more (each attempt costs
# the full retry sequence), reported once.
_UNREACHABLE: dict[str, str] = {}


def unreachable(settings: Settings) -> str | None:
    """Why the label endpoint of ``settings`` was given up on by this process, or None."""
    return _UNREACHABLE.get(endpoint_key(settings))


@dataclass(frozen=True)
class LabelLookup:
    """What the endpoint says about some ids."""

    labels: dict[str, str]
    unknown: frozenset[str]
    unchecked: frozenset[str]


def active(settings: Settings) -> bool:
    """Whether this label source may talk to the endpoint (see the module docstring)."""
    return settings.mode is Mode.WIKIDATA and (
        settings.endpoint_labels or settings.check_unknown_ids or settings.execute)


def _entity_base(settings: Settings) -> str:
    return settings.prefixes.get("wd", WIKIDATA_PREFIXES["wd"])


def label_query(ids: Sequence[str], entity_base: str) -> str:
    """One query for many ids: which exist, and their English label."""
    values = " ".join(f"<{entity_base}{id_}>" for id_ in ids)
    return (
        f"PREFIX rdfs: <{_RDFS_LABEL}>\n"
        "PREFIX schema: <http://schema.org/>\n"
        "SELECT ?id (SAMPLE(COALESCE(?l, ?n)) AS ?label) WHERE {\n"
        f"  VALUES ?id {{ {values} }}\n"
        "  FILTER EXISTS { ?id ?p ?o }\n"
        '  OPTIONAL { ?id rdfs:label ?l . FILTER(LANG(?l) = "en") }\n'
        # A dump or a local file may name things with schema:name only (the query service
        # has both, with the same values).
        '  OPTIONAL { ?id schema:name ?n . FILTER(LANG(?n) = "en") }\n'
        "} GROUP BY ?id")


def lookup(ids: Iterable[str], settings: Settings) -> LabelLookup:
    """Labels and existence of ``ids`` (``Q42``, ``P31``, ``L7``), from the cache or the endpoint.

    Ids of another shape are ignored.  Raises EndpointError/ConfigurationError when the
    endpoint cannot be used at all.
    """
    wanted = [i for i in dict.fromkeys(ids) if WIKIDATA_ID.match(i)]
    source = endpoint_key(settings)
    cache = LabelCache(cache_dir_for(settings.cache_dir))
    known = cache.get_many(source, wanted)
    missing = [i for i in wanted if i not in known]
    unchecked: set[str] = set()
    if missing and source in _UNREACHABLE:
        unchecked.update(missing)
        missing = []
    if missing:
        executor = executor_for(settings)
        base = _entity_base(settings)
        fresh: dict[str, tuple[bool, str | None]] = {}
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            try:
                execution = executor.run(label_query(batch, base), Form.SELECT,
                                         max_rows=len(batch))
            except EndpointError as exc:
                _UNREACHABLE[source] = str(exc)
                log.warning("cannot reach %s for labels and id checks (%s): going on without "
                            "them (id_check_skipped notes)", source, exc)
                unchecked.update(missing[start:])
                break
            if execution.status not in ("ok", "empty"):
                log.warning("label lookup on %s failed (%s): %d ids not checked", source,
                            execution.status, len(batch))
                unchecked.update(batch)
                continue
            answered = {}
            for row in execution.rows:
                iri = row.get("id", "")
                if iri.startswith(base):
                    answered[iri[len(base):]] = row.get("label") or None
            for id_ in batch:
                fresh[id_] = (id_ in answered, answered.get(id_))
        cache.put_many(source, fresh)
        known.update(fresh)
    labels = {i: label for i, (exists, label) in known.items() if exists and label}
    unknown = frozenset(i for i, (exists, _) in known.items() if not exists)
    return LabelLookup(labels, unknown, frozenset(unchecked))


@hookimpl(trylast=True)
def kgqa_resolve_labels(ids: Sequence[str], settings: Settings) -> Mapping[str, str] | None:
    if not active(settings):
        return None
    return lookup(ids, settings).labels


def _first_use(text: str, id_: str) -> int | None:
    for token in tokenize(text):
        if token.kind == "pname" and token.text.split(":", 1)[-1] == id_:
            return token.start
    return None


@hookimpl(trylast=True)
def kgqa_check(
    question: Question, candidate: Candidate, parsed: ParsedQuery, settings: Settings
) -> Sequence[Diagnostic] | None:
    if not settings.check_unknown_ids or settings.mode is not Mode.WIKIDATA:
        return None
    if not parsed.valid_syntax or not parsed.ids:
        return None  # an invalid candidate is rejected anyway: no request for it
    found = lookup(parsed.ids, settings)
    out = DiagnosticBuilder(candidate.sparql, PRODUCER)
    where = executor_for(settings).name
    for id_ in parsed.ids:
        if id_ in found.unknown:
            offset = _first_use(candidate.sparql, id_)
            out.add("unknown_id", Severity.ERROR,
                    f"{id_} does not exist on {where}: probably a hallucinated id", offset,
                    len(id_))
    if found.unchecked:
        why = ("the endpoint could not be reached" if unreachable(settings)
               else "the lookup did not get a usable answer")
        out.add("id_check_skipped", Severity.INFO,
                f"could not check {', '.join(sorted(found.unchecked)[:5])} on {where} ({why})")
    return out.items
