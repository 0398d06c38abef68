"""Service errors: every failure is a JSON body ``{"error": {"code", "message"}}``.

``code`` is stable (documented in the README); ``message`` is for people.  A problem with a
candidate query is never one of these: it is a diagnostic in the report (status 200).

===========================  ======  =====================================================
code                         status  when
===========================  ======  =====================================================
invalid_json                 400     the body is not JSON (or not UTF-8, or nested too deep)
invalid_request              422     JSON of the wrong shape or types (``details`` says where)
too_many_candidates          422     more candidates than the operator's limit
too_many_queries             422     more ``/check`` queries than the limit
too_many_questions           422     more ``/validate/batch`` items than the limit
execute_not_allowed          403     ``execute`` asked, the service was not started with
                                     ``--allow-execute``
host_not_allowed             403     a Qanary message names a host the operator did not allow
body_too_large               413     the body is over the limit
body_timeout                 408     the client took too long to send the body
not_found                    404     no such path
method_not_allowed           405     wrong HTTP method
timeout                      503     the request did not finish within the time limit
endpoint_error               502     a SPARQL endpoint / triplestore could not be used
configuration_error          500     the service is misconfigured (operator's problem)
internal_error               500     a bug (logged with its traceback)
===========================  ======  =====================================================
"""

from __future__ import annotations

from typing import Any

from kgqa_validator.errors import ConfigurationError, EndpointError, KgqaValidatorError


class ServiceError(Exception):
    """An error answered as JSON with ``status`` and a stable ``code``."""

    def __init__(self, code: str, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, **self.extra)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def from_library(exc: KgqaValidatorError) -> ServiceError:
    """The service error for one of the library's own exceptions."""
    if isinstance(exc, EndpointError):
        return ServiceError("endpoint_error", 502, str(exc))
    if isinstance(exc, ConfigurationError):
        return ServiceError("configuration_error", 500, str(exc))
    return ServiceError("configuration_error", 500, f"{type(exc).__name__}: {exc}")


STATUS_CODES = {400: "invalid_json", 404: "not_found", 405: "method_not_allowed",
                408: "body_timeout", 413: "body_too_large", 422: "invalid_request"}
