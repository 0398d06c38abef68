"""Options shared by several commands, and how arguments become :class:`Settings`.

Every check here fails with a one-line :class:`~kgqa_validator.errors.UsageError` before
anything is loaded, so a typo never costs a model load or a request.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kgqa_validator.config import Settings
from kgqa_validator.errors import UsageError
from kgqa_validator.types import Mode, Precision


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--mode``, ``--prefix``, the plugin switches and the parse time limit."""
    parser.add_argument("--mode", choices=[m.value for m in Mode], default="wikidata",
                        help="wikidata: the query service's prefixes and dialect (default); "
                             "generic: any SPARQL 1.1 endpoint")
    parser.add_argument("--prefix", action="append", default=[], metavar="NAME=IRI",
                        help="declare a prefix for every query (repeatable)")
    add_plugin_switches(parser)
    parser.add_argument("--timeout-parse", type=float, default=1.5, metavar="SECONDS",
                        help="cut off a parse after this long (default 1.5)")


def add_plugin_switches(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-plugins", action="store_true",
                        help="do not load installed plugins (built-ins only)")
    parser.add_argument("--block", action="append", default=[], metavar="PLUGIN",
                        help="do not register this plugin (repeatable; built-ins too, e.g. "
                             "endpoint_labels)")


def add_endpoint(parser: argparse.ArgumentParser) -> None:
    """Where queries and label lookups go."""
    parser.add_argument("--endpoint", help="SPARQL endpoint URL (default: Wikidata)")
    parser.add_argument("--executor", choices=["sparqlwrapper", "embedded"],
                        help="how to execute (default: embedded with --data, else sparqlwrapper)")
    parser.add_argument("--data", type=Path, metavar="FILE",
                        help="local RDF file (.ttl, .nt, .nq, .trig, .rdf) for the embedded executor")
    parser.add_argument("--contact", default=os.environ.get("KGQA_VALIDATOR_CONTACT"),
                        help="contact (e-mail or URL) for the User-Agent; required by Wikidata "
                             "(default: $KGQA_VALIDATOR_CONTACT)")
    parser.add_argument("--timeout", type=float, default=65.0, metavar="SECONDS",
                        help="endpoint timeout, seconds (default 65)")
    parser.add_argument("--cache-dir", type=Path, metavar="DIR",
                        help="where answers and labels are cached (default: the user cache dir)")
    parser.add_argument("--cache-ttl", type=float, default=300.0, metavar="SECONDS",
                        help="answer identical queries from the cache this long (default 300; "
                             "0: off)")


def add_scoring(parser: argparse.ArgumentParser) -> None:
    """Labels, model, ranking and execution (``rerank``/``validate``), plus :func:`add_endpoint`."""
    parser.add_argument("--labels", action="append", default=[], type=Path, metavar="FILE",
                        help='JSON labels file {"Q42": "Douglas Adams"} (repeatable)')
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--precision", choices=[p.value for p in Precision],
                        help="how the encoder computes (default auto: bf16 on a CPU with native "
                             "bf16, else fp32; int8 is faster but less accurate; see the README)")
    parser.add_argument("--threshold", type=float,
                        help="rejection threshold (default: the model's calibrated one)")
    parser.add_argument("--max-candidates", type=int, default=1000, metavar="N",
                        help="most candidates for one question (default 1000); a --jsonl line "
                             "with more is answered with invalid_input")
    parser.add_argument("--execute", action="store_true",
                        help="run the best candidates (also fetches labels from the endpoint)")
    parser.add_argument("--endpoint-labels", action="store_true",
                        help="fetch English labels for the ids from the endpoint")
    parser.add_argument("--check-ids", action="store_true",
                        help="report ids the endpoint does not have (unknown_id, an error)")
    parser.add_argument("--no-property-table", action="store_true",
                        help="do not use the shipped property table (labels, datatypes, unknown ids)")
    parser.add_argument("--no-demote", action="store_true",
                        help="rank form/datatype mismatches by score like the rest (and never "
                             "reject them as outranked for it)")
    parser.add_argument("--no-consensus", action="store_true",
                        help="rank by the encoder alone, not also by the candidates' agreement")
    parser.add_argument("--consensus-weight", type=float, metavar="W",
                        help="one weight of the candidates' agreement against the encoder, 0-1, "
                             "for every request (default: 1 where the encoder accepts a "
                             "candidate that others repeat, else 0.5; used with 3 or more "
                             "valid candidates)")
    parser.add_argument("--keep-outranked", action="store_true",
                        help="accept a candidate one or two terms away from a better one, or "
                             "one the question contradicts when a better one fits it "
                             "(default: rejected as outranked)")
    parser.add_argument("--no-consensus-accepts", action="store_true",
                        help="when the encoder rejects every candidate, reject them all "
                             "(default: the one the others agree with most is kept)")
    add_endpoint(parser)


def add_batch(parser: argparse.ArgumentParser, record: str) -> None:
    """``--jsonl``, ``--output``, ``--resume`` and ``--json`` of a batch-capable command."""
    parser.add_argument("--jsonl", metavar="FILE",
                        help=f"JSON lines with {record} ('-' for stdin); writes JSON lines")
    parser.add_argument("--output", "-o", help="write --jsonl results here (default stdout)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the finished lines of --output and continue after them")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def prefixes(items: Sequence[str]) -> dict[str, str]:
    result = {}
    for item in items:
        name, sep, iri = item.partition("=")
        if not sep or not iri:
            raise UsageError(f"--prefix {item!r}: expected NAME=IRI")
        result[name.strip().rstrip(":")] = iri.strip().strip("<>")
    return result


def _positive(value: float | None, option: str) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{option} must be a positive number of seconds, not {value}")


def endpoint_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    if args.executor == "embedded" and args.data is None:
        raise UsageError("--executor embedded needs --data FILE")
    _positive(args.timeout, "--timeout")
    if math.isnan(args.cache_ttl):
        raise UsageError("--cache-ttl must be a number of seconds")
    settings = replace(settings, executor=args.executor, data_file=args.data,
                       contact=args.contact, timeout_s=args.timeout, cache_dir=args.cache_dir,
                       cache_ttl_s=max(0.0, args.cache_ttl))
    if args.endpoint:
        settings = replace(settings, endpoint=args.endpoint)
    return settings


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """The :class:`Settings` of a command's arguments (``extra`` overrides fields)."""
    _positive(args.timeout_parse, "--timeout-parse")
    if getattr(args, "max_candidates", 1) < 1:
        raise UsageError("--max-candidates must be at least 1")
    if getattr(args, "threshold", None) is not None and not math.isfinite(args.threshold):
        raise UsageError(f"--threshold must be a finite number, not {args.threshold}")
    settings = Settings.for_mode(args.mode, prefixes(args.prefix))
    settings = replace(settings, parse_timeout_s=args.timeout_parse, **extra)
    if hasattr(args, "execute"):  # rerank / validate
        settings = replace(
            settings,
            labels_files=tuple(args.labels),
            model_path=args.model,
            threshold=args.threshold,
            execute=args.execute,
            precision=Precision(args.precision) if args.precision else settings.precision,
            endpoint_labels=args.endpoint_labels,
            check_unknown_ids=args.check_ids,
            property_table=not args.no_property_table,
            demote_mismatches=not args.no_demote,
            consensus=not args.no_consensus,
            consensus_accepts=not args.no_consensus_accepts,
            reject_outranked=not args.keep_outranked,
            max_candidates=args.max_candidates,
        )
        if args.consensus_weight is not None:
            settings = settings.with_consensus_weight(checked_weight(args.consensus_weight))
        settings = endpoint_settings(args, settings)
    return settings


def checked_weight(weight: float) -> float:
    """``--consensus-weight`` as given, or the one-line usage error."""
    if not 0.0 <= weight <= 1.0:  # also refuses NaN
        raise UsageError(f"--consensus-weight must be between 0 and 1, not {weight}")
    return weight


def make_validator(args: argparse.Namespace, settings: Settings) -> Any:
    """The :class:`~kgqa_validator.validator.Validator` of these arguments (imported lazily:
    it pulls in the plugins, which ``--help`` and usage errors never need)."""
    from kgqa_validator.validator import Validator

    return Validator(settings, autoload=False if args.no_plugins else None, block=args.block)


def check_paths(args: argparse.Namespace) -> None:
    """``--output``/``--resume`` options that would lose work are usage errors."""
    output = args.output if args.output not in (None, "-") else None
    if args.resume and output is None:
        raise UsageError("--resume needs --output FILE (the file to continue)")
    if output is not None and args.jsonl not in (None, "-") and os.path.exists(output):
        try:
            same = os.path.samefile(args.jsonl, output)
        except OSError:
            same = False
        if same:
            raise UsageError(f"--output {output} is the input file: it would be overwritten "
                             "before it is read")
