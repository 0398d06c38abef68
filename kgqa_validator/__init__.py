"""kgqa-validator: validate, score, rank and execute candidate SPARQL queries for a question.

Writing a plugin: implement any hook of :mod:`kgqa_validator.hookspecs` in a module or
object, decorate each function with :data:`hookimpl`, and expose it through the
``kgqa_validator`` entry-point group of your distribution::

    # my_plugin.py
    from kgqa_validator import hookimpl, Diagnostic, Severity

    @hookimpl
    def kgqa_check(question, candidate, parsed, settings):
        if "MINUS" in candidate.sparql:
            return [Diagnostic("no_minus", Severity.WARNING, "MINUS is slow here")]

    # pyproject.toml
    [project.entry-points.kgqa_validator]
    my_plugin = "my_plugin"

``kgqa-validator plugins`` lists what is loaded.  Heavy libraries (torch,
sentence-transformers, rdflib) are imported only when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kgqa_validator._version import __version__
from kgqa_validator.config import Settings
from kgqa_validator.errors import (
    ConfigurationError,
    DataFormatError,
    EndpointBlocked,
    EndpointError,
    KgqaValidatorError,
    ModelError,
    PluginLoadError,
    UsageError,
)
from kgqa_validator.hookspecs import hookimpl
from kgqa_validator.types import (
    Assessment,
    Candidate,
    Decision,
    Diagnostic,
    Execution,
    ExecutionStatus,
    Form,
    Mode,
    ParsedQuery,
    Precision,
    Question,
    Report,
    Score,
    Severity,
    Span,
    Verdict,
)

if TYPE_CHECKING:
    from kgqa_validator.plugins import get_plugin_manager
    from kgqa_validator.validator import Validator


def __getattr__(name: str) -> Any:
    # The validator pulls in pluggy plugins and the parser; keep `import kgqa_validator` light.
    if name == "Validator":
        from kgqa_validator.validator import Validator

        return Validator
    if name == "get_plugin_manager":
        from kgqa_validator.plugins import get_plugin_manager

        return get_plugin_manager
    raise AttributeError(name)


__all__ = [
    "Assessment",
    "Candidate",
    "ConfigurationError",
    "DataFormatError",
    "Decision",
    "Diagnostic",
    "EndpointBlocked",
    "EndpointError",
    "Execution",
    "ExecutionStatus",
    "Form",
    "KgqaValidatorError",
    "Mode",
    "ModelError",
    "ParsedQuery",
    "PluginLoadError",
    "Precision",
    "Question",
    "Report",
    "Score",
    "Settings",
    "Severity",
    "Span",
    "UsageError",
    "Validator",
    "Verdict",
    "__version__",
    "get_plugin_manager",
    "hookimpl",
]
