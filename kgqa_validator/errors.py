"""The one exception tree of kgqa-validator.

Problems *with a candidate query* are never exceptions: they are
:class:`~kgqa_validator.types.Diagnostic` values in the report.  Exceptions are for the
infrastructure around the validation, and each maps to one exit status in the CLI::

    KgqaValidatorError                 base; exit status 2 in the CLI
    ├── ConfigurationError             bad option, unknown plugin, missing contact ...
    ├── UsageError                     the command line is wrong (an option, a missing argument)
    ├── PluginLoadError                an entry point failed to import (strict mode only)
    ├── DataFormatError                a dataset or input file is not in a readable format
    ├── ModelError                     the encoder cannot be loaded or trained
    ├── InvalidInputError              a Python caller passed the wrong type (also a TypeError)
    └── EndpointError                  a SPARQL endpoint cannot be used at all
        └── EndpointBlocked            the endpoint answered 403: all traffic to it stopped

Third-party exceptions are mapped at the boundary with ``raise X(...) from exc``.
"""

from __future__ import annotations


class KgqaValidatorError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(KgqaValidatorError):
    """An option, a plugin name or a setting is wrong."""


class UsageError(KgqaValidatorError):
    """The command line cannot be run as given (raised by the CLI only)."""


class PluginLoadError(KgqaValidatorError):
    """A plugin entry point failed to load (raised in strict mode only)."""


class DataFormatError(KgqaValidatorError):
    """An input file or dataset does not have the expected format."""


class ModelError(KgqaValidatorError):
    """The encoder model is missing, broken or cannot be trained."""


class InvalidInputError(KgqaValidatorError, TypeError):
    """The Python API got an argument of the wrong type: a question that is not a ``str``, or
    one string where a list of candidate queries belongs.  (A single candidate that is not a
    ``str`` is not an error: it gets an ``invalid_input`` diagnostic.)"""


class EndpointError(KgqaValidatorError):
    """A SPARQL endpoint cannot be used (unreachable, misconfigured, refusing)."""


class EndpointBlocked(EndpointError):
    """The endpoint answered 403; no further request is sent to it in this process."""
