"""The ``kgqa-validator`` entry point: the parser, and every error mapped to an exit status.

Exit status: 0 everything valid/accepted, 1 something invalid, 2 usage or infrastructure
error (one line on stderr, never a traceback), 130 interrupted (finished output kept).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from kgqa_validator._version import __version__
from kgqa_validator.cli import check, labels, model_commands, plugins, rerank
from kgqa_validator.cli.exits import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    HelpFormatter,
)
from kgqa_validator.cli.options import add_common, add_endpoint, settings_from
from kgqa_validator.errors import KgqaValidatorError, UsageError

DESCRIPTION = """\
Validate, score, rank and execute candidate SPARQL queries for a question over Wikidata
(or any SPARQL 1.1 endpoint with --mode generic).

  check      is each query valid SPARQL, and why not (no network)
  rerank     rank a question's candidate queries and reject the bad ones (alias: validate)
  labels     what the label files and the endpoint say about ids
  plugins    which plugins are loaded, and which failed
  audit      check a whole dataset of question/query pairs, with an HTML report
  serve/mcp  the same as an HTTP service, a Qanary component or an MCP server
  train/evaluate  fine-tune and measure the encoder

'kgqa-validator COMMAND --help' shows each command's options and examples."""

EXAMPLES = """\
examples:
  kgqa-validator check 'SELECT ?x WHERE { wd:Q42 wdt:P69 ?x }'
  kgqa-validator rerank -q 'Where was Douglas Adams educated?' --candidates c.txt

""" + EXIT_CODES_HELP


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kgqa-validator", description=DESCRIPTION, epilog=EXAMPLES,
                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"kgqa-validator {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log to stderr (and show the traceback of an internal error)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    layout = {"formatter_class": HelpFormatter}
    check.add_parser(sub, **layout)
    for name in ("rerank", "validate"):
        rerank.add_parser(sub, name, **layout)
    labels.add_parser(sub, **layout)

    from kgqa_validator.audit.command import add_parser as add_audit_parser

    add_audit_parser(sub, add_common=add_common, add_endpoint=add_endpoint, **layout)
    plugins.add_parser(sub, **layout)
    model_commands.add_parsers(sub, **layout)

    from kgqa_validator.service.commands import add_service_commands

    add_service_commands(sub, add_common=add_common, base_settings=settings_from, **layout)
    return parser


def _one_line(message: object) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= 500 else text[:499] + "…"


def _tolerant_streams() -> None:
    """Undecodable input bytes and unencodable characters never stop the CLI.

    Standard input reads like an input file (see :func:`kgqa_validator.batch_io.open_input`);
    standard output and error write a lone surrogate as its backslash escape (valid JSON in a
    JSON string).
    """
    for stream, options in ((sys.stdin, {"encoding": "utf-8-sig", "errors": "surrogateescape"}),
                            (sys.stdout, {"errors": "backslashreplace"}),
                            (sys.stderr, {"errors": "backslashreplace"})):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if "encoding" in options and (getattr(stream, "encoding", "") or "").lower().replace(
                    "-", "").replace("_", "") not in ("utf8", "utf8sig"):
                options = {"errors": options["errors"]}  # keep a non-UTF-8 locale's encoding
            reconfigure(**options)
        except (ValueError, OSError, AttributeError):
            pass  # a replaced stream (tests, embedding) is left as it is


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _tolerant_streams()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("kgqa-validator: give a command (check, rerank, validate, audit, "
                             "plugins, labels, train, evaluate, serve, mcp); --help lists them")
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print("kgqa-validator: interrupted (finished results were written)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KgqaValidatorError as exc:  # ConfigurationError, UsageError, EndpointError ...
        print(f"kgqa-validator: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        print(f"kgqa-validator: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: still one line and exit 2; the traceback with -v
        logging.getLogger(__name__).info("unexpected error", exc_info=True)
        print(f"kgqa-validator: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(run with -v for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
