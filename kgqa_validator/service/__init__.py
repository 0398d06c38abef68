"""Other faces over the same :class:`~kgqa_validator.Validator`: an HTTP service (FastAPI),
a Qanary component and MCP tools.

``create_app(settings)`` builds the ASGI app; its dependencies (``pip install
'kgqa-validator[service]'``) are imported only when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgqa_validator.service.config import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The ASGI app (see :mod:`kgqa_validator.service.app`).

    Without ``settings`` (an ASGI server's ``--factory``), the options of
    ``kgqa-validator serve`` are read from ``$KGQA_VALIDATOR_SERVE_ARGS``
    (:func:`~kgqa_validator.service.commands.settings_from_environment`); unset, the defaults.
    """
    from kgqa_validator.service.app import create_app as build

    if settings is None:
        import sys

        from kgqa_validator.errors import ConfigurationError
        from kgqa_validator.service.commands import settings_from_environment

        try:
            settings = settings_from_environment()
        except ConfigurationError as exc:
            # An ASGI server would print a traceback for any exception but a TypeError;
            # the operator gets the one line that says which option is wrong.
            print(f"kgqa-validator: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return build(settings)


__all__ = ["ServiceSettings", "create_app"]
