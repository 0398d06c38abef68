"""Settings shared by every hook of one validator (a frozen value, passed as ``settings``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from kgqa_validator.errors import ConfigurationError
from kgqa_validator.prefixes import WIKIDATA_PREFIXES
from kgqa_validator.types import Mode, Precision

WIKIDATA_ENDPOINT = "https://query.wikidata.org/sparql"


@dataclass(frozen=True)
class Settings:
    """Every knob of the pipeline; hooks read it, nobody mutates it.

    ``prefixes`` are pre-declared for every candidate (in Wikidata mode they default to the
    query service's own set).  Limits bound the work spent on hostile input: a candidate over
    ``max_query_chars`` or nested deeper than ``max_depth`` is diagnosed without parsing, and a
    parse that takes longer than ``parse_timeout_s`` is cut off in its worker process.

    ``precision`` is how the encoder computes (:mod:`kgqa_validator.model.precision`):
    ``auto`` (bf16 on a CPU with native bf16, else fp32), ``fp32``, ``bf16`` or ``int8``.

    Execution (see :mod:`kgqa_validator.execution`): ``executor`` is ``"sparqlwrapper"`` (the
    default for an http(s) ``endpoint``) or ``"embedded"`` (the default when ``data_file`` is
    set); ``contact`` goes into the User-Agent and is required by the Wikidata query service;
    ``timeout_s`` bounds one request (and one embedded query); ``cache_ttl_s`` is how long an
    identical query is answered from the local cache (0 disables it); ``max_in_flight`` is how
    many requests one endpoint may have open at once; ``cache_dir`` defaults to the user's
    cache directory.  ``endpoint_labels`` and ``check_unknown_ids`` turn on the endpoint label
    source (:mod:`kgqa_validator.builtin.endpoint_labels`).

    ``consensus`` lets the candidates' agreement with each other take part in the ranking
    where a request has three or more valid candidates, blended with the encoder's score with
    weight ``consensus_weight`` (0: encoder only, 1: consensus only among the candidates the
    encoder accepts), or ``consensus_weight_voted`` where the encoder accepts a candidate that
    other candidates repeat (the request holds samples, and their votes are evidence the
    encoder does not have); ``consensus_accepts`` keeps the candidate the others agree with most
    even below the encoder's threshold; see :mod:`kgqa_validator.builtin.combine`.
    ``reject_outranked`` rejects an accepted candidate one term away from a better-ranked
    accepted one (another entity, property or direction: both cannot be right) and, with
    ``demote_mismatches``, an accepted candidate the question contradicts when a better-ranked
    accepted one fits it; see :mod:`kgqa_validator.builtin.decide`.
    ``property_table`` uses the property table shipped with the package (labels for every
    property id, datatypes for the lints, ``unknown_id`` for a property that does not exist);
    ``demote_mismatches`` ranks a candidate whose form or datatypes contradict the question
    (``form_mismatch``, ``datatype_mismatch``) below every candidate without such a warning
    (see :mod:`kgqa_validator.builtin.decide`).
    """

    mode: Mode = Mode.WIKIDATA
    prefixes: Mapping[str, str] = field(default_factory=lambda: dict(WIKIDATA_PREFIXES))
    max_query_chars: int = 100_000
    max_depth: int = 64
    parse_timeout_s: float = 1.5
    parse_workers: int = 1
    threshold: float | None = None
    model_path: Path | None = None
    precision: Precision = Precision.AUTO  # a plain str of the same value is converted
    labels_files: tuple[Path, ...] = ()
    execute: bool = False
    endpoint: str = WIKIDATA_ENDPOINT
    executor: str | None = None
    data_file: Path | None = None
    contact: str | None = None
    timeout_s: float = 65.0
    max_rows: int = 10
    cache_dir: Path | None = None
    cache_ttl_s: float = 300.0
    max_in_flight: int = 1
    check_unknown_ids: bool = False
    endpoint_labels: bool = False
    consensus: bool = True
    consensus_weight: float = 0.5
    consensus_weight_voted: float = 1.0
    consensus_accepts: bool = True
    reject_outranked: bool = True
    # Candidates one rerank request may hold: each is parsed and embedded, so an unbounded
    # list is unbounded work and memory; the CLI answers a longer one with invalid_input.
    max_candidates: int = 1000
    property_table: bool = True
    demote_mismatches: bool = True

    def __post_init__(self) -> None:
        # Fail where the setting is made, not at the first score.
        object.__setattr__(self, "precision", check_precision(self.precision))
        for name in ("consensus_weight", "consensus_weight_voted"):
            weight = getattr(self, name)
            if not 0.0 <= weight <= 1.0:  # also refuses NaN
                raise ConfigurationError(f"{name} must be between 0 and 1, not {weight}")

    def with_consensus_weight(self, weight: float) -> Settings:
        """These settings with one consensus weight for every request, voted or not."""
        return replace(self, consensus_weight=weight, consensus_weight_voted=weight)

    @classmethod
    def for_mode(cls, mode: Mode | str, prefixes: Mapping[str, str] | None = None,
                 **kwargs: object) -> Settings:
        """Settings for ``mode``; ``prefixes`` add to (Wikidata) or replace (generic) the set."""
        mode = Mode(mode)
        base: dict[str, str] = dict(WIKIDATA_PREFIXES) if mode is Mode.WIKIDATA else {}
        base.update(prefixes or {})
        return cls(mode=mode, prefixes=base, **kwargs)  # type: ignore[arg-type]


def check_precision(precision: str) -> Precision:
    """``precision`` as a :class:`Precision`, or :class:`ConfigurationError` if it is none
    (cheap: nothing about the machine is looked at)."""
    try:
        return Precision(precision)
    except ValueError:
        raise ConfigurationError(
            f"unknown precision {precision!r}: expected one of "
            f"{', '.join(p.value for p in Precision)}") from None
