"""``kgqa-validator plugins``: what is registered, from where, and what failed to load."""

from __future__ import annotations

import argparse
from typing import Any

from kgqa_validator.cli.exits import EXIT_OK
from kgqa_validator.cli.options import add_plugin_switches
from kgqa_validator.report_json import dumps

EXAMPLES = """\
examples:
  kgqa-validator plugins
  kgqa-validator plugins --json --block endpoint_labels"""


def add_parser(sub: Any, **kwargs: Any) -> None:
    plugins = sub.add_parser(
        "plugins", help="list the loaded plugins",
        description="List the registered plugins (built-ins and installed entry points): "
                    "name, version, origin and the hooks each implements; then the ones that "
                    "failed to load.", epilog=EXAMPLES, **kwargs)
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    add_plugin_switches(plugins)
    plugins.set_defaults(func=cmd_plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    from kgqa_validator.plugins import get_plugin_manager

    pm = get_plugin_manager(autoload=False if args.no_plugins else None, block=args.block)
    infos = pm.describe()
    if args.json:
        print(dumps({
            "plugins": [{"name": i.name, "version": i.version, "origin": i.origin,
                         "hooks": list(i.hooks)} for i in infos],
            "failed": [{"name": f.name, "error": f.error} for f in pm.failures],
        }))
        return EXIT_OK
    for info in infos:
        print(f"{info.name:<24} {info.version:<10} {info.origin:<32} {', '.join(info.hooks)}")
    for failure in pm.failures:
        print(f"{failure.name:<24} FAILED     {failure.error}")
    return EXIT_OK
