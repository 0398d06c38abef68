"""Never act for the query: what is refused before any request is made.

A candidate comes from a text generator and must be treated as hostile.  Running it must not
make the endpoint (or, with the embedded executor, this process) do anything but read its own
graph.  So, before any request:

* only queries are sent: ``SELECT``, ``ASK``, ``CONSTRUCT``, ``DESCRIBE``; update operations
  (``INSERT``, ``DELETE``, ``LOAD``, ``CLEAR``, ``DROP`` ...) and anything that did not parse
  are refused;
* ``FROM`` / ``FROM NAMED`` are refused: on many stores (rdflib, Jena, Virtuoso) they fetch a
  graph from any URL, ``file:`` included;
* ``SERVICE`` is refused, except ``SERVICE wikibase:label`` sent in Wikidata mode to the
  Wikidata query service itself, which answers it internally.  Any other store (pyoxigraph
  included) would make an HTTP request to the service IRI, so the label service is refused
  there too;
* a query longer than ``settings.max_query_chars`` is refused (it never reaches SPARQLWrapper,
  whose query-type regular expression is cubic on crafted input).

The rules read the parse (:class:`~kgqa_validator.types.ParsedQuery`: ``form``,
``valid_syntax``, ``services``, ``datasets``).  Because the parse comes from a hook that any
plugin may implement, they also check the linear-time tokenizer's facts of the exact text that
would be sent: a parse that missed a ``SERVICE`` cannot open the door.  This is not a second
parse: the tokenizer never fails and reads each character a bounded number of times.  Where the
tokens themselves are in doubt (a code point escape that SPARQL readers decode differently, an
unterminated string, an unpaired bracket: no valid query has one) the text is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from kgqa_validator.parsing.lexer import QUERY_KEYWORDS, LexicalFacts, analyse, expand_name
from kgqa_validator.prefixes import LABEL_SERVICE
from kgqa_validator.types import Form, ParsedQuery

SENDABLE_FORMS = frozenset({Form.SELECT, Form.ASK, Form.CONSTRUCT, Form.DESCRIBE})

# Hosts that run the Wikidata query service (Blazegraph with the wikibase:label service).
_WDQS_HOST_SUFFIXES = (".wikidata.org",)


def answers_label_service(endpoint: str) -> bool:
    """Whether ``endpoint`` is a Wikidata query service, which answers ``wikibase:label`` itself."""
    host = (urlsplit(endpoint).hostname or "").lower()
    return any(host.endswith(suffix) or host == suffix[1:] for suffix in _WDQS_HOST_SUFFIXES)


def refusal_reason(
    text: str,
    parsed: ParsedQuery,
    prefixes: Mapping[str, str],
    *,
    allow_label_service: bool,
    max_chars: int,
    facts: LexicalFacts | None = None,
) -> str | None:
    """Why ``text`` must not be sent, or ``None`` when it may be.

    Args:
        text: the exact query text that would be sent (before prefix lines are added).
        parsed: the parse of that text.
        prefixes: the pre-declared prefixes (to recognise ``wikibase:label``).
        allow_label_service: whether ``SERVICE wikibase:label`` may pass (Wikidata query
            service in Wikidata mode only).
        max_chars: refuse longer texts without looking at them further.
        facts: the tokenizer's facts of ``text`` when the caller already has them.
    """
    if len(text) > max_chars:
        return f"the query is {len(text):,} characters; the limit is {max_chars:,}"
    if parsed.form is Form.UPDATE:
        return "update operations (INSERT, DELETE, LOAD, CLEAR, DROP ...) are never sent"
    if parsed.form not in SENDABLE_FORMS or not parsed.valid_syntax:
        return "the query is not valid SPARQL, so it is not sent"
    facts = facts if facts is not None else analyse(text)
    unsafe = lexical_doubt(facts)
    if unsafe is not None:
        return unsafe
    keyword = facts.first_keyword
    if keyword is None or keyword.upper not in QUERY_KEYWORDS:
        # The parse said "query" but the text does not start like one: trust the text.
        return "the text does not start with SELECT, ASK, CONSTRUCT or DESCRIBE"
    datasets = list(parsed.datasets) + [t.text for t in facts.datasets]
    if datasets:
        return (f"FROM {datasets[0]} would make the endpoint load a graph from elsewhere; only "
                "the endpoint's own default graph is queried")
    for service in list(parsed.services) + [t.text for t in facts.services]:
        if allow_label_service and expand_name(service, prefixes, facts.declared_prefixes) == LABEL_SERVICE:
            continue
        if expand_name(service, prefixes, facts.declared_prefixes) == LABEL_SERVICE:
            return ("SERVICE wikibase:label is answered only by the Wikidata query service; "
                    "this endpoint would send a request to it")
        return f"SERVICE {service} would make the endpoint send a request to another service"
    return None


def lexical_doubt(facts: LexicalFacts) -> str | None:
    """Why the tokens of a text cannot be trusted to show every SERVICE and FROM: a code point
    escape that two readings of SPARQL decode differently, an unterminated string or a
    bracket that does not pair up (a valid query has none of them)."""
    if facts.escape_conflicts:
        return (f"a code point escape {facts.escape_conflicts[0][1]}: SPARQL readers disagree "
                "on what the query says, so it is not sent")
    if facts.unterminated:
        return "the query has an unterminated string, so it is not sent"
    if facts.unbalanced is not None:
        return f"the bracket {facts.unbalanced.text!r} does not pair up, so the query is not sent"
    return None


def with_prefixes(text: str, prefixes: Mapping[str, str], facts: LexicalFacts) -> str:
    """``text`` preceded by PREFIX lines for the pre-declared prefixes it uses.

    Generated queries rely on the Wikidata query service's predeclared prefixes; any other
    endpoint needs them spelled out.  Prefixes the query declares itself are left alone.
    """
    used = sorted({t.text.split(":", 1)[0] for t in facts.prefixed_names})
    lines = [f"PREFIX {name}: <{prefixes[name]}>" for name in used
             if name in prefixes and name not in facts.declared_prefixes]
    return "\n".join([*lines, text]) if lines else text
