"""The ``kgqa-validator`` command line: the only package that prints.

One module per concern: :mod:`.main` (entry point, parser, errors to exit statuses),
:mod:`.options` (arguments to :class:`~kgqa_validator.config.Settings`), :mod:`.jsonl`
(bounded reading of JSON Lines input), :mod:`.render` (human output; JSON is
:mod:`kgqa_validator.report_json`), and one module per command or group of commands.  The
commands talk to :class:`~kgqa_validator.validator.Validator`, never to ``builtin/`` plugins,
so ``--block`` and installed plugins shape every command alike.
"""

from kgqa_validator.cli.exits import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK
from kgqa_validator.cli.main import build_parser, main

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_INVALID", "EXIT_OK", "build_parser", "main"]
