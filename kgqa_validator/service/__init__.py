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
    """The ASGI app (see :mod:`kgqa_validator.service.app`)."""
    from kgqa_validator.service.app import create_app as build

    return build(settings)


__all__ = ["ServiceSettings", "create_app"]
