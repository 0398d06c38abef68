"""Built-in lints (``kgqa_check``, ``kgqa_check_question``).

Codes (see the README's table): ``unbound_projection``, ``external_service``,
``dataset_clause``, ``placeholder_leak``, ``question_template``, ``form_mismatch``,
``datatype_mismatch``.

``form_mismatch`` (a warning) compares the question with the query's form: a yes/no question
without ASK, an ASK query for a question that is not yes/no, a "how many" question whose
SELECT does not COUNT, and a SELECT that answers with nothing but a COUNT for a question that
does not ask for a number.  With the property table (:mod:`kgqa_validator.builtin.properties`)
datatypes count: a "how many" question answered by a ``quantity`` property (population, number
of episodes) is no ``form_mismatch``, and a "when" question answered only by ``wikibase-item``
properties, with no ``time`` property and no date function, gets ``datatype_mismatch``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from kgqa_validator.builtin.properties import table_for
from kgqa_validator.config import Settings
from kgqa_validator.diagnostics import DiagnosticBuilder
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.parsing.clauses import clause_targets, projects_only_a_count
from kgqa_validator.parsing.lexer import LexicalFacts, analyse, expand_name
from kgqa_validator.parsing.scope import first_occurrences
from kgqa_validator.prefixes import LABEL_SERVICE
from kgqa_validator.scoring_text import ids_in
from kgqa_validator.types import Candidate, Diagnostic, Form, Mode, ParsedQuery, Question, Severity

PRODUCER = "lints"

# LC-QuAD leaks template slot tokens such as t1417656573 into questions and queries.
_PLACEHOLDER_TOKEN = re.compile(r"\bt\d{8,}\b")
_TEMPLATE_SLOT = re.compile(r"\{[^{}]{1,120}\}")
# What a person puts before the question itself ("Can you tell me where ...", "Does anyone
# know who ...", "Tell me whether ..."): the form is read from what follows.
_LEAD_IN = re.compile(
    r"^\s*(?:(?:please|so|ok(?:ay)?|hey|hi|hello)\b[\s,]*)?"
    r"(?:(?:can|could|would|will)\s+(?:you|someone|anyone|somebody|anybody)\s+(?:please\s+)?"
    r"(?:tell|show|give|list|name|find|say|let)(?:\s+(?:me|us|know))*"
    r"|(?:do|does|did)\s+(?:you|anyone|anybody|someone|somebody)\s+(?:happen\s+to\s+)?know"
    r"|(?:do\s+you\s+have\s+)?any\s+idea"
    r"|i\s+(?:want|wanted|would\s+like|['’]d\s+like|need|wish)\s+to\s+(?:know|find\s+out|learn)"
    r"|i\s+(?:wonder|was\s+wondering|am\s+wondering)"
    r"|(?:please\s+)?(?:tell|show|give|let)\s+(?:me|us)(?:\s+know)?)"
    r"(?:\s+about)?[\s,:]*",
    re.IGNORECASE)
_AUXILIARY = (r"(?:is|are|was|were|does|do|did|has|have|had|can|could|will|would|should|shall)"
              r"(?:n['’]t)?|won['’]t|can['’]t")
_YES_NO = re.compile(rf"^\s*(?:{_AUXILIARY})\b", re.IGNORECASE)
# Only after a lead-in: "If he was born in 1950, how old ..." asks no yes or no.
_WHETHER = re.compile(r"^\s*(?:whether|if)\b", re.IGNORECASE)
# "How many years did ...", "how many kilometres ...": a measure, computed or read from a
# quantity, not a count of things.
_HOW_MANY = re.compile(
    r"^\s*(?:how\s+many(?!\s+(?:years?|months?|days?|hours?|minutes?|seconds?|times?|"
    r"kilometres?|kilometers?|km|metres?|meters?|miles?|feet|foot|inches?|centimetres?|"
    r"centimeters?|kilo(?:gram)?s?|kg|pounds?|tons?|tonnes?|degrees?|calories?|dollars?|"
    r"euros?|percent)\b)|what\s+is\s+the\s+number\s+of|count\s+the)\b",
    re.IGNORECASE)
# Anywhere in a question, any of these may ask for a count ("Tell me the number of ...").
_ASKS_A_COUNT = re.compile(
    r"\bhow\s+(?:many|much|often)\b|\bnumbers?\b|\bcount(?:s|ed|ing)?\b"
    r"|\bamount\b|\btotal\b|\bquantity\b",
    re.IGNORECASE)
# A century or a decade is often an item (Q6955 "19th century"), so only year, date, day and
# month count as asking when.
_ASKS_WHEN = re.compile(
    r"^\s*(?:when\b|(?:in\s+)?(?:what|which)\s+(?:year|date|day|month)\b"
    r"|on\s+what\s+date\b)", re.IGNORECASE)
# "When Zidane was born, what country ...", "When it comes to ...": a clause that sets the
# scene, the question follows it.
_WHEN_CLAUSE = re.compile(
    r"^\s*when\b(?:[^?]*,\s*(?:what|who|whom|whose|which|where|how|why)\b"
    r"|\s+(?:it\s+comes|you|looking|conducting|using|considering)\b)",
    re.IGNORECASE)
# A measure computed from values ("how many years" as YEAR(?end) - YEAR(?start)).
_COMPUTED = re.compile(
    r"\b(?:SUM|AVG|MIN|MAX|YEAR|MONTH|DAY)\s*\(|(?:[?$]\w+|\))\s*[-+]\s*(?:[?$]\w|\(|\d)",
    re.IGNORECASE)
_DATE_FUNCTION = re.compile(r"\b(?:YEAR|MONTH|DAY|NOW)\s*\(|wikibase:timeValue|xsd:dateTime",
                            re.IGNORECASE)


@hookimpl(trylast=True)
def kgqa_check(
    question: Question, candidate: Candidate, parsed: ParsedQuery, settings: Settings
) -> Sequence[Diagnostic]:
    text = candidate.sparql
    out = DiagnosticBuilder(text, PRODUCER)
    if parsed.form is Form.UNKNOWN or parsed.form is Form.UPDATE:
        return out.items
    prefixes = dict(settings.prefixes)
    # Positions come from the tokens, so that a word in a comment, string or IRI never
    # attracts a diagnostic, and each of several clauses gets its own position.
    facts = analyse(text)
    tokens = facts.tokens

    if parsed.structure_known and parsed.form is Form.SELECT and not parsed.select_star:
        first = first_occurrences(tokens)
        for var in parsed.projected:
            if var not in parsed.bound:
                at = first.get(var)
                out.add("unbound_projection", Severity.ERROR,
                        f"?{var} is selected but never bound by the WHERE clause",
                        at.start if at else None, len(at.text) if at else 1,
                        excerpt=at.text if at else None)

    for keyword, target in clause_targets(tokens, "SERVICE"):
        # The query's own PREFIX lines win: "PREFIX wikibase: <http://elsewhere/>" makes
        # "SERVICE wikibase:label" a call to elsewhere.
        if settings.mode is Mode.WIKIDATA \
                and expand_name(target.text, prefixes, facts.declared_prefixes) == LABEL_SERVICE:
            continue
        prefix = target.text.split(":", 1)[0] if target.kind == "pname" else None
        redeclared = (f" (the query declares {prefix}: as <{facts.declared_prefixes[prefix]}>)"
                      if prefix in facts.declared_prefixes else "")
        out.add("external_service", Severity.ERROR,
                f"SERVICE {target.text}{redeclared} would make the endpoint call another service; "
                "only " + ("the Wikidata label service is allowed" if settings.mode is Mode.WIKIDATA
                           else "queries without SERVICE are allowed"), keyword.start,
                target.end - keyword.start, excerpt=text[keyword.start:target.end])
    for keyword, target in clause_targets(tokens, "FROM"):
        out.add("dataset_clause", Severity.ERROR,
                f"{text[keyword.start:target.end]} asks the endpoint to load a graph; queries "
                "must use the endpoint's default graph", keyword.start, target.end - keyword.start,
                excerpt=text[keyword.start:target.end])

    for token in tokens:
        if token.kind in ("pname", "word") and _PLACEHOLDER_TOKEN.search(token.text):
            out.add("placeholder_leak", Severity.ERROR,
                    f"{token.text!r} looks like a leaked template placeholder", token.start,
                    len(token.text), excerpt=token.text)
            break

    if question.text.strip():
        table = table_for(settings)
        datatypes: set[str] = set()
        if table is not None:
            datatypes = {table.datatype(i) or "" for i in ids_in(text, prefixes) if i.startswith("P")}
        out.items.extend(_form_mismatch(question.text, parsed, text, facts, datatypes))
        if table is not None:
            out.items.extend(_datatype_mismatch(question.text, parsed, text, facts, datatypes))
    return out.items


def _question_itself(question: str) -> tuple[str, bool]:
    """The question without its lead-in ("Can you tell me ..."), and whether it had one."""
    lead_in = _LEAD_IN.match(question)
    if lead_in is None or not lead_in.group().strip():
        return question, False
    return question[lead_in.end():], True


def asks_yes_or_no(question: str) -> bool:
    """Whether the question asks yes or no: it opens with an auxiliary ("Was ...", "Isn't
    ..."), or, after a lead-in, with "whether" or "if" ("Tell me whether ...")."""
    rest, had_lead_in = _question_itself(question)
    return bool(_YES_NO.match(rest) or (had_lead_in and _WHETHER.match(rest)))


def asks_when(question: str) -> bool:
    """Whether the question asks for a date ("When ...", "In what year ..."), and not only
    sets the scene with a when-clause ("When Zidane was born, what country ...")."""
    rest, _ = _question_itself(question)
    return bool(_ASKS_WHEN.match(rest)) and not _WHEN_CLAUSE.match(rest)


def _datatype_mismatch(question: str, parsed: ParsedQuery, text: str, facts: LexicalFacts,
                       datatypes: set[str]) -> list[Diagnostic]:
    out = DiagnosticBuilder(text, PRODUCER)
    if parsed.form is Form.SELECT and asks_when(question) and datatypes \
            and "time" not in datatypes and datatypes <= {"wikibase-item", "external-id", "string"} \
            and not _DATE_FUNCTION.search(text):
        out.add("datatype_mismatch", Severity.WARNING,
                "the question asks when, but no property of the query holds a date or time",
                facts.first_keyword.start if facts.first_keyword else None)
    return out.items


def _form_mismatch(question: str, parsed: ParsedQuery, text: str, facts: LexicalFacts,
                   datatypes: Collection[str] = ()) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    out = DiagnosticBuilder(text, PRODUCER)
    keyword = facts.first_keyword  # the form's keyword: the lints only run on a known form
    keyword_offset = keyword.start if keyword else None
    yes_no = asks_yes_or_no(question)
    if yes_no and parsed.form is not Form.ASK:
        out.add("form_mismatch", Severity.WARNING,
                "the question asks yes or no, but the query is not an ASK query", keyword_offset)
    elif parsed.form is Form.ASK and not yes_no:
        out.add("form_mismatch", Severity.WARNING,
                "the query is an ASK (yes/no) query, but the question does not ask yes or no",
                keyword_offset)
    elif _HOW_MANY.match(_question_itself(question)[0]) and parsed.form is Form.SELECT \
            and "quantity" not in datatypes and not re.search(r"\bCOUNT\s*\(", text, re.IGNORECASE) \
            and not _COMPUTED.search(text):
        out.add("form_mismatch", Severity.WARNING,
                "the question asks 'how many', but the query does not COUNT", keyword_offset)
    elif parsed.form is Form.SELECT and not _ASKS_A_COUNT.search(question) \
            and re.search(r"\bCOUNT\s*\(", text, re.IGNORECASE) and projects_only_a_count(facts):
        out.add("form_mismatch", Severity.WARNING,
                "the query answers with a count, but the question does not ask how many",
                keyword_offset)
    found.extend(out.items)
    return found


@hookimpl(trylast=True)
def kgqa_check_question(question: Question, settings: Settings) -> Sequence[Diagnostic]:
    text = question.text
    out = DiagnosticBuilder(text, PRODUCER)
    slot = _TEMPLATE_SLOT.search(text)
    if slot:
        out.add("question_template", Severity.WARNING,
                "the question still contains template slots ({...}); it was never verbalised",
                slot.start(), len(slot.group()), excerpt=slot.group())
    token = _PLACEHOLDER_TOKEN.search(text)
    if token:
        out.add("placeholder_leak", Severity.WARNING,
                f"{token.group()!r} looks like a leaked template placeholder", token.start(),
                len(token.group()), excerpt=token.group())
    if text and text.strip().lower().strip('"') in {"n/a", "none", "null", "na"}:
        out.add("question_missing", Severity.WARNING, f"the question is {text.strip()!r}", 0)
    return out.items
