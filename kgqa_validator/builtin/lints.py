"""Built-in lints (``kgqa_check``, ``kgqa_check_question``).

Codes (see the README's table): ``unbound_projection``, ``external_service``,
``dataset_clause``, ``placeholder_leak``, ``question_template``, ``form_mismatch``,
``datatype_mismatch``.

``form_mismatch`` (a warning) compares the question with the query's form: a yes/no question
without ASK, an ASK query for a question that asks for something else (an English question
word, an imperative), a "how many" question whose SELECT does not COUNT, and a SELECT that
answers with nothing but a COUNT for a question that does not ask for a number.  With the
property table (:mod:`kgqa_validator.builtin.properties`) datatypes count: a "how many"
question answered by a ``quantity`` property (population, number of episodes) is no
``form_mismatch``, and a "when" question answered only by ``wikibase-item`` properties, with
no ``time`` property and no date function, gets ``datatype_mismatch``.

The default decision rejects a contradicted candidate when one that fits ranks above it, so a
lint that misreads a question costs the right answer: the question is read behind its greeting
and lead-in ("Hi, can you tell me where ..."), and every rule leans towards not firing
(``benchmarks/lint_precision.py`` counts how often they fire on gold pairs).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

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
# know who ...", "Tell me whether ..."): the form is read from what follows.  Greetings and
# fillers first, on their own ("Hi, is ...", "Hello! Can you tell me ...").
_GREETING = re.compile(
    r"^\s*(?:(?:please|so|ok(?:ay)?|well|hey|hi|hello)(?:\s+there)?\b\s*[,!.:]?\s*)+",
    re.IGNORECASE)
_LEAD_IN = re.compile(
    r"^\s*(?:"
    r"(?:can|could|would|will)\s+(?:you|u|someone|anyone|somebody|anybody)\s+"
    r"(?:(?:please|kindly|also|just|possibly)\s+)*(?:help\s+(?:me\s+|us\s+)?)?"
    r"(?:tell|show|give|list|name|find(?:\s+out)?|let|provide|identify|look\s+up|get|retrieve"
    r"|figure\s+out|count)(?:\s+(?:me|us|know|with))*"
    r"|would\s+you\s+(?:mind\s+telling|be\s+able\s+to\s+tell)\s+(?:me|us)"
    r"|are\s+you\s+able\s+to\s+tell\s+(?:me|us)"
    r"|(?:do|does|did)\s+(?:you(?:\s+guys)?|any\s+of\s+you|anyone|anybody|someone|somebody)"
    r"(?:\s+here)?\s+(?:happen\s+to\s+)?(?:know|remember)"
    r"|(?:do\s+you\s+have\s+|have\s+you\s+(?:got\s+)?)?any\s+idea"
    r"|i\s*(?:want|wanted|would\s+like|['’]d\s+like|['’]d\s+love|need|wish)\s+to\s+"
    r"(?:know|find\s+out|learn)"
    r"|i\s*(?:wonder|was\s+wondering|am\s+wondering|['’]m\s+wondering|am\s+curious"
    r"|['’]m\s+curious)|(?:just\s+)?wondering"
    r"|(?:please\s+)?(?:tell|show|give|let)\s+(?:me|us)(?:\s+know)?)"
    r"(?:\s+about)?[\s,:]*",
    re.IGNORECASE)
# "I was wondering if you could tell me who ...", "Tell me if you know who ...": a second
# lead-in inside the first.
_NESTED_LEAD_IN = re.compile(
    r"^\s*(?:whether|if)\s+(?:you|u|anyone|someone|somebody|anybody)\s+"
    r"(?:(?:could|can|would|might|will|happen\s+to)\s+)?(?:(?:please|kindly|also|just)\s+)*"
    r"(?:tell|show|give|list|name|find(?:\s+out)?|provide|identify|knows?|remembers?)"
    r"(?:\s+(?:me|us))?[\s,:]*",
    re.IGNORECASE)
_AUXILIARY = (r"(?:is|are|was|were|does|do|did|has|have|had|can|could|will|would|should|shall)"
              r"(?:n['’]?t)?|won['’]?t|can['’]?t|am|may|might|must")
# German "Was ist ...?" asks what (QALD has German questions).
_YES_NO = re.compile(
    rf"^\s*(?!was\s+(?:ist|sind|war|waren|hat|haben|gibt|bedeutet)\b)(?:{_AUXILIARY})\b",
    re.IGNORECASE)
# A question that asks for something: only such a question contradicts an ASK query (a question
# in another language, or a bare phrase, says nothing either way).  An English question word
# anywhere ("If you had to name one, where ..."), or an imperative opening.
_ASKS_FOR_SOMETHING = re.compile(
    r"\b(?:what|who|whom|whose|which|where|when|why|how)\b"
    r"|^\s*(?:list|name|give|show|tell|count|find)\b",
    re.IGNORECASE)
# "Is Paris or Berlin the capital?" asks which, not yes or no ("... or not?" still does).
_ALTERNATIVE = re.compile(r"\bor\b(?!\s+not\b)", re.IGNORECASE)
# Only after a lead-in: "If he was born in 1950, how old ..." asks no yes or no.
_WHETHER = re.compile(r"^\s*(?:whether|if)\b", re.IGNORECASE)
# "How many years did ...", "how many kilometres ...": a measure, computed or read from a
# quantity, not a count of things.
_HOW_MANY = re.compile(
    r"^\s*(?:how\s+many(?!\s+(?:years?|months?|days?|hours?|minutes?|seconds?|"
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
# "When Zidane was born, what country ...", "When Obama was president who ...", "When it
# comes to ...": a clause that sets the scene, the question follows it.  "When was the tower,
# which is in Paris, built?" asks when: an auxiliary (or "and", "exactly") follows "when".
_WHEN_CLAUSE = re.compile(
    rf"^\s*when\s+(?!(?:{_AUXILIARY}|and|exactly|precisely|roughly|approximately)\b)(?!['’]s)"
    r"[^?]*?\b(?:what|who|whom|whose|which|where|how|why)\b"
    r"|^\s*when\s+(?:it\s+comes|you|looking|conducting|using|considering)\b",
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
        reading = read_question(question.text)
        out.items.extend(_form_mismatch(reading, parsed, text, facts, datatypes))
        if table is not None:
            out.items.extend(_datatype_mismatch(reading, parsed, text, facts, datatypes))
    return out.items


def _question_itself(question: str) -> tuple[str, bool]:
    """The question without its greeting and lead-in ("Hi, can you tell me ..."), and whether
    it had a lead-in."""
    greeting = _GREETING.match(question)
    if greeting is not None:
        question = question[greeting.end():]
    lead_in = _LEAD_IN.match(question)
    if lead_in is None or not lead_in.group().strip():
        return question, False
    rest = question[lead_in.end():]
    for _ in range(3):  # bounded: "... if you could tell me if you could tell me ..."
        nested = _NESTED_LEAD_IN.match(rest)
        if nested is None:
            break
        rest = rest[nested.end():]
    return rest, True


@dataclass(frozen=True)
class QuestionReading:
    """What the lints read in a question, read once for every rule."""

    text: str
    rest: str  # behind its greeting and lead-in
    had_lead_in: bool

    @property
    def yes_no(self) -> bool:
        """It opens with an auxiliary ("Was ...", "Isn't ..."), or, after a lead-in, with
        "whether" or "if" ("Tell me whether ...")."""
        return bool(_YES_NO.match(self.rest) or (self.had_lead_in and _WHETHER.match(self.rest)))

    @property
    def alternative(self) -> bool:
        """It offers a choice ("Was he born in Cambridge or in London?"): a yes/no opening
        that asks which."""
        return bool(_ALTERNATIVE.search(self.text))

    @property
    def asks_for_something(self) -> bool:
        """A lead-in, an English question word or an imperative: what contradicts an ASK."""
        return self.had_lead_in or bool(_ASKS_FOR_SOMETHING.search(self.text))

    @property
    def when(self) -> bool:
        """It asks for a date ("When ...", "In what year ..."), and does not only set the scene
        with a when-clause ("When Zidane was born, what country ...")."""
        return bool(_ASKS_WHEN.match(self.rest)) and not _WHEN_CLAUSE.match(self.rest)


def read_question(question: str) -> QuestionReading:
    return QuestionReading(question, *_question_itself(question))


def _datatype_mismatch(question: QuestionReading, parsed: ParsedQuery, text: str,
                       facts: LexicalFacts, datatypes: set[str]) -> list[Diagnostic]:
    out = DiagnosticBuilder(text, PRODUCER)
    if parsed.form is Form.SELECT and question.when and datatypes \
            and "time" not in datatypes and datatypes <= {"wikibase-item", "external-id", "string"} \
            and not _DATE_FUNCTION.search(text):
        out.add("datatype_mismatch", Severity.WARNING,
                "the question asks when, but no property of the query holds a date or time",
                facts.first_keyword.start if facts.first_keyword else None)
    return out.items


def _form_mismatch(question: QuestionReading, parsed: ParsedQuery, text: str, facts: LexicalFacts,
                   datatypes: Collection[str] = ()) -> list[Diagnostic]:
    out = DiagnosticBuilder(text, PRODUCER)
    keyword = facts.first_keyword  # the form's keyword: the lints only run on a known form
    keyword_offset = keyword.start if keyword else None
    yes_no = question.yes_no
    if yes_no and not question.alternative and parsed.form is not Form.ASK:
        out.add("form_mismatch", Severity.WARNING,
                "the question asks yes or no, but the query is not an ASK query", keyword_offset)
    elif parsed.form is Form.ASK and not yes_no and question.asks_for_something:
        out.add("form_mismatch", Severity.WARNING,
                "the query is an ASK (yes/no) query, but the question does not ask yes or no",
                keyword_offset)
    elif _HOW_MANY.match(question.rest) and parsed.form is Form.SELECT \
            and "quantity" not in datatypes and not re.search(r"\bCOUNT\s*\(", text, re.IGNORECASE) \
            and not _COMPUTED.search(text.split("{", 1)[0]):  # in the projection
        out.add("form_mismatch", Severity.WARNING,
                "the question asks 'how many', but the query does not COUNT", keyword_offset)
    elif parsed.form is Form.SELECT and not _ASKS_A_COUNT.search(question.text) \
            and re.search(r"\bCOUNT\s*\(", text, re.IGNORECASE) and projects_only_a_count(facts):
        out.add("form_mismatch", Severity.WARNING,
                "the query answers with a count, but the question does not ask how many",
                keyword_offset)
    return out.items


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
