"""``kgqa-validator serve`` and ``kgqa-validator mcp``: argument registration and start-up.

The CLI only calls :func:`add_service_commands`; this module builds the settings and
imports FastAPI/uvicorn/mcp only when a command runs, so that a missing extra is one line
(``pip install 'kgqa-validator[service]'``), not an ImportError at ``kgqa-validator check``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kgqa_validator.config import Settings
from kgqa_validator.errors import ConfigurationError
from kgqa_validator.service.config import ServiceSettings
from kgqa_validator.types import Precision

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'kgqa-validator[service]'"
ENV_ARGS = "KGQA_VALIDATOR_SERVE_ARGS"
"""Options of ``kgqa-validator serve`` for an app that an ASGI server builds itself."""


def _add_service_options(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; anything else exposes the "
                             "service to the network)")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    parser.add_argument("--labels", action="append", default=[], type=Path, metavar="FILE",
                        help='JSON labels file {"Q42": "Douglas Adams"} (repeatable)')
    parser.add_argument("--properties", type=Path, metavar="FILE",
                        help="JSON Lines of Wikidata properties {id, label, datatype}: "
                             "labels and datatypes for explain_ids")
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    parser.add_argument("--precision", choices=[x.value for x in Precision],
                        help="encoder precision (default auto)")
    parser.add_argument("--threshold", type=float, help="default rejection threshold")
    parser.add_argument("--allow-execute", action="store_true",
                        help="let requests run candidates (and look labels up) on --endpoint or "
                             "--data; requests can never name an endpoint themselves")
    parser.add_argument("--endpoint", help="the only SPARQL endpoint queries may run on "
                                           "(default: Wikidata, with --allow-execute)")
    parser.add_argument("--data", type=Path, metavar="FILE",
                        help="local RDF file to execute on instead of an endpoint")
    parser.add_argument("--contact", default=os.environ.get("KGQA_VALIDATOR_CONTACT"),
                        help="contact for the User-Agent (required by Wikidata)")
    parser.add_argument("--endpoint-labels", action="store_true",
                        help="fetch labels from the endpoint (needs --allow-execute)")
    parser.add_argument("--max-candidates", type=int, default=100,
                        help="candidates per question (default 100)")
    parser.add_argument("--max-queries", type=int, default=1000,
                        help="queries per /check request (default 1000)")
    parser.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES",
                        help="request body limit, 413 past it (default 1 MiB)")
    parser.add_argument("--request-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="most one request may take (default 30)")
    parser.add_argument("--body-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="most a client may take to send its body, 408 past it (default 10)")
    parser.add_argument("--workers", type=int, default=2,
                        help="requests running the pipeline at once (default 2)")


def add_service_commands(sub: Any, add_common: Callable[[argparse.ArgumentParser], None],
                         base_settings: Callable[[argparse.Namespace], Settings],
                         **layout: Any) -> None:
    """Register ``serve`` and ``mcp``; ``add_common``/``base_settings`` are the CLI's shared
    options (mode, prefixes, plugins, parse timeout) and how it turns them into Settings;
    ``layout`` goes to each ``add_parser`` (the CLI's help formatter)."""
    serve = sub.add_parser(
        "serve", help="HTTP service (POST /validate ...) and Qanary component",
        description="Serve check, rerank and explain_ids over HTTP (JSON; OpenAPI at /docs), "
                    "optionally as a Qanary component. Needs the [service] extra.",
        epilog="examples:\n  kgqa-validator serve --port 8000 --labels labels.json\n"
               "  kgqa-validator serve --allow-execute --contact me@example.org "
               "--qanary-pipeline http://localhost:8080", **layout)
    _add_service_options(serve, 8000)
    serve.add_argument("--qanary-pipeline", metavar="URL",
                       help="register with this Qanary pipeline (Spring Boot Admin) every 10 s")
    serve.add_argument("--qanary-allow-host", action="append", default=[], metavar="HOST",
                       help="a triplestore / question host the Qanary component may contact "
                            "(repeatable; the --qanary-pipeline host is allowed)")
    serve.add_argument("--public-url", metavar="URL",
                       help="where the Qanary pipeline reaches this component "
                            "(default http://HOST:PORT)")
    add_common(serve)
    serve.set_defaults(func=lambda args: run_serve(args, base_settings(args)))

    mcp = sub.add_parser(
        "mcp", help="MCP server with check_sparql, validate_candidates, explain_ids (stdio or "
                    "streamable HTTP)",
        description="Offer check_sparql, validate_candidates and explain_ids as MCP tools to an "
                    "LLM client. Needs the [service] extra.",
        epilog="examples:\n  kgqa-validator mcp --labels labels.json            (stdio)\n"
               "  kgqa-validator mcp --transport streamable-http --port 8001", **layout)
    mcp.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio",
                     help="stdio (default: for a client that starts the server) or "
                          "streamable-http on --host/--port")
    _add_service_options(mcp, 8000)
    add_common(mcp)
    mcp.set_defaults(func=lambda args: run_mcp(args, base_settings(args)))


def service_settings(args: argparse.Namespace, settings: Settings) -> ServiceSettings:
    """Settings from the parsed arguments (ConfigurationError for what cannot work)."""
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise ConfigurationError(f"--threshold must be a finite number, not {args.threshold}")
    for name in ("max_candidates", "max_queries", "max_body", "workers"):
        if getattr(args, name) < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("request_timeout", "body_timeout"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise ConfigurationError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if not 0 <= args.port < 65536:
        raise ConfigurationError(f"--port {args.port} is not a port number")
    if args.endpoint_labels and not args.allow_execute:
        raise ConfigurationError("--endpoint-labels contacts the endpoint: add --allow-execute")
    # The pipeline's own candidate bound must not undercut the service's (a request the
    # service admits would then fail inside the validator).
    settings = replace(settings, labels_files=tuple(args.labels), model_path=args.model,
                       threshold=args.threshold, precision=args.precision or settings.precision,
                       data_file=args.data, contact=args.contact,
                       endpoint_labels=args.endpoint_labels,
                       max_candidates=max(settings.max_candidates, args.max_candidates))
    if args.endpoint:
        settings = replace(settings, endpoint=args.endpoint)
    if args.allow_execute:
        from kgqa_validator.execution import check_settings

        check_settings(settings)  # a missing --contact fails now, not at the first request
    from kgqa_validator.label_files import load_labels

    for path in settings.labels_files:
        load_labels(path)  # a broken labels file fails now, not at the first request
    return ServiceSettings(
        validator=settings, host=args.host, port=args.port, allow_execute=args.allow_execute,
        max_body_bytes=args.max_body, max_candidates=args.max_candidates,
        max_queries=args.max_queries,
        request_timeout_s=args.request_timeout, body_timeout_s=args.body_timeout,
        workers=args.workers,
        no_plugins=args.no_plugins, block=tuple(args.block),
        qanary_fetch_hosts=tuple(getattr(args, "qanary_allow_host", ())),
        qanary_pipeline=getattr(args, "qanary_pipeline", None),
        public_url=getattr(args, "public_url", None), properties_file=args.properties)


def settings_from_environment(environ: Mapping[str, str] | None = None) -> ServiceSettings | None:
    """The settings ``kgqa-validator serve $KGQA_VALIDATOR_SERVE_ARGS`` would run with, or
    ``None`` when the variable is not set.

    ``uvicorn --factory kgqa_validator.service:create_app --workers 4`` calls ``create_app()``
    with no arguments in every worker process: the environment is the only channel from the
    operator to those processes, and reading it through ``serve``'s own parser means every
    option (limits, --allow-execute, --endpoint, labels ...) is spelled, checked and
    defaulted exactly as on the command line.  --host and --port are the ASGI server's.
    """
    import shlex

    text = (os.environ if environ is None else environ).get(ENV_ARGS)
    if text is None:
        return None
    from kgqa_validator.cli.main import build_parser
    from kgqa_validator.cli.options import settings_from
    from kgqa_validator.errors import KgqaValidatorError, UsageError

    try:
        argv = shlex.split(text)
        if any(a in ("-h", "--help") for a in argv):
            raise ConfigurationError("--help is for the command line: kgqa-validator serve --help")
        args = build_parser().parse_args(["serve", *argv])
        settings = service_settings(args, settings_from(args))
    except SystemExit as exc:  # argparse's own exits (--version)
        raise ConfigurationError(f"{ENV_ARGS}: not a set of serve options (exit {exc.code})") from None
    except (ValueError, UsageError, KgqaValidatorError) as exc:
        raise ConfigurationError(f"{ENV_ARGS}: {exc}") from None
    ignored = [a for a in argv if a.split("=")[0] in ("--host", "--port")]
    if ignored:
        log.warning("%s: %s ignored: the ASGI server binds (give it --host/--port)",
                    ENV_ARGS, " ".join(ignored))
    return settings


def _warn_if_exposed(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("binding %s: the service is reachable from the network; it has no "
                    "authentication (put it behind a proxy that has)", host)


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigurationError(f"serve needs the service extra ({exc.name} is missing): "
                                 f"{INSTALL_HINT}") from exc
    from kgqa_validator.service.app import create_app

    service = service_settings(args, settings)
    _warn_if_exposed(service.host)
    uvicorn.run(create_app(service), host=service.host, port=service.port,
                log_level="info" if args.verbose else "warning", timeout_keep_alive=10,
                limit_concurrency=1000)
    return 0


def run_mcp(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(f"mcp needs the service extra ({exc.name} is missing): "
                                 f"{INSTALL_HINT}") from exc
    from kgqa_validator.service.mcp_server import run

    service = service_settings(args, settings)
    if args.transport != "stdio":
        _warn_if_exposed(service.host)
    run(service, args.transport)
    return 0
