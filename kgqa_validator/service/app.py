"""The ASGI app: ``create_app(settings)`` (FastAPI; imported only when the service runs).

Run it with ``kgqa-validator serve`` or under any ASGI server, e.g.
``uvicorn --factory kgqa_validator.service:create_app`` (each worker process loads the model
once, at start-up).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kgqa_validator import __version__
from kgqa_validator.errors import KgqaValidatorError
from kgqa_validator.report_json import dumps
from kgqa_validator.service.config import ServiceSettings
from kgqa_validator.service.engine import Engine
from kgqa_validator.service.errors import STATUS_CODES, ServiceError, error_body, from_library
from kgqa_validator.service.limits import BodyLimit
from kgqa_validator.service.schemas import (
    ERROR_EXAMPLE,
    REPORT_EXAMPLE,
    BatchRequest,
    CheckRequest,
    QanaryMessage,
    ValidateRequest,
)

BODY_MODELS: tuple[type[BaseModel], ...] = (ValidateRequest, BatchRequest, CheckRequest, QanaryMessage)
M = TypeVar("M", bound=BaseModel)

log = logging.getLogger(__name__)


class SafeJSONResponse(JSONResponse):
    """JSON that survives lone surrogates in echoed input (written as their escapes).

    The report routes return one themselves: FastAPI would otherwise walk every report
    through ``jsonable_encoder`` and a response model first, about 1 ms of a warm request's
    5 ms of service overhead, for values that are plain JSON already."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def _ok(example: Any = None) -> dict[int | str, dict[str, Any]]:
    """The 200 of a route that returns its JSON response itself (FastAPI cannot infer it)."""
    content: dict[str, Any] = {"schema": {"type": "object"}}
    if example is not None:
        content["example"] = example
    return {200: {"description": "the result", "content": {"application/json": content}}}


def _errors(status: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": "error", "content": {"application/json": {"example": ERROR_EXAMPLE}}}}


async def parse_body(request: Request, model: type[M]) -> M:
    """The body as ``model``, whatever the Content-Type says (clients often send none).

    pydantic's JSON reader refuses invalid UTF-8, lone surrogates and nesting over 200
    levels itself, without building the nested value first.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        details = [{"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
                   for e in errors[:20]]
        if any(e.get("type") == "json_invalid" for e in errors):
            raise ServiceError("invalid_json", 400, "the body is not valid UTF-8 JSON",
                               details=details) from None
        raise ServiceError("invalid_request", 422, "the body does not have the expected "
                           "fields and types", details=details) from None


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body that :func:`parse_body` reads."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in BODY_MODELS:
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> SafeJSONResponse:
        return SafeJSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(KgqaValidatorError)
    async def library_error(_: Request, exc: KgqaValidatorError) -> SafeJSONResponse:
        mapped = from_library(exc)
        return SafeJSONResponse(mapped.body(), status_code=mapped.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> SafeJSONResponse:
        details = [{"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
                   for e in exc.errors()[:20]]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return SafeJSONResponse(error_body("invalid_json", "the body is not valid JSON",
                                               details=details), status_code=400)
        return SafeJSONResponse(error_body("invalid_request", "the body does not have the "
                                           "expected fields and types", details=details),
                                status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bad UTF-8, too deep
            message = "the body is not valid UTF-8 JSON (or is nested too deeply)"
        return SafeJSONResponse(error_body(code, message), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> SafeJSONResponse:
        log.error("internal error", exc_info=exc)
        return SafeJSONResponse(error_body("internal_error", f"{type(exc).__name__}: a bug, "
                                           "logged by the service"), status_code=500)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The HTTP service (and Qanary component) over one shared validator."""
    service = settings or ServiceSettings()
    engine = Engine(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registration = None
        if service.warm_up:
            await engine.run(engine.warm_up, timeout_s=600)
        if service.qanary_pipeline:
            from kgqa_validator.service.qanary import Registration

            registration = Registration(service)
            registration.start()
        try:
            yield
        finally:
            if registration is not None:
                registration.stop()
            engine.close()

    app = FastAPI(
        title="kgqa-validator", version=__version__, lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        description="Validate, score and rank candidate SPARQL queries for a question. "
                    "Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code; a bad "
                    "candidate is a diagnostic in the report, never an error.")
    app.state.engine = engine
    _install_error_handlers(app)
    _install_openapi(app)
    app.add_middleware(BodyLimit, max_bytes=service.max_body_bytes,
                       timeout_s=service.body_timeout_s)

    @app.post("/validate", summary="Rank and reject the candidates of one question",
              responses={**_ok(REPORT_EXAMPLE), **_errors(422), **_errors(403)},
              openapi_extra=body_doc(ValidateRequest))
    async def validate(request: Request) -> SafeJSONResponse:
        """The report `kgqa-validator rerank --json` gives: the ranking, best first, with
        score, verdict and diagnostics per candidate."""
        body = await parse_body(request, ValidateRequest)
        engine.check_candidates(len(body.candidates))
        engine.variant(body.options.threshold, body.options.execute)  # 403 before queueing
        return SafeJSONResponse(await engine.run(engine.validate, body.question, body.candidates,
                                                 body.options.threshold, body.options.execute))

    @app.post("/validate/batch", summary="Several questions in one request",
              responses={**_ok(), **_errors(422)}, openapi_extra=body_doc(BatchRequest))
    async def validate_batch(request: Request) -> SafeJSONResponse:
        """`{"results": [report, ...]}`, one report per item, in order."""
        body = await parse_body(request, BatchRequest)
        if len(body.items) > service.max_batch:
            raise ServiceError("too_many_questions", 422, f"{len(body.items)} items; this "
                               f"service takes at most {service.max_batch} per request")
        for item in body.items:
            engine.check_candidates(len(item.candidates))
            engine.variant(item.options.threshold, item.options.execute)

        deadline = engine.deadline()

        def run_all() -> list[dict[str, Any]]:
            results = []
            for item in body.items:
                engine.check_deadline(deadline)  # past it, stop: the answer is a 503 anyway
                results.append(engine.validate(item.question, item.candidates,
                                               item.options.threshold, item.options.execute))
            return results

        return SafeJSONResponse({"results": await engine.run(run_all)})

    @app.post("/check", summary="Syntax and lints of many queries (no scoring)",
              responses={**_ok(), **_errors(422)}, openapi_extra=body_doc(CheckRequest))
    async def check(request: Request) -> SafeJSONResponse:
        """`{"results": [{"sparql", "valid", "form", "diagnostics"}, ...]}` as `check --json`."""
        body = await parse_body(request, CheckRequest)
        engine.check_queries(len(body.queries))
        return SafeJSONResponse({"results": await engine.run(engine.check, body.queries,
                                                             body.question, engine.deadline())})

    @app.get("/health", summary="Liveness (also the Qanary / Spring Boot Admin health URL)")
    async def health() -> dict[str, Any]:
        return {"status": "UP" if engine.ready or not service.warm_up else "STARTING",
                "model_loaded": engine.ready}

    @app.get("/plugins", summary="The loaded plugins")
    async def plugins() -> dict[str, Any]:
        return {"plugins": [{"name": i.name, "version": i.version, "origin": i.origin,
                             "hooks": list(i.hooks)} for i in engine.pm.describe()],
                "failed": [{"name": f.name, "error": f.error} for f in engine.pm.failures]}

    @app.get("/version", summary="Versions and what this service may do")
    async def version() -> dict[str, Any]:
        settings = engine.validator.settings
        return {"version": __version__, "mode": settings.mode.value,
                "model": str(settings.model_path) if settings.model_path else "shipped",
                "precision": settings.precision, "execute_allowed": service.allow_execute,
                "limits": {"max_body_bytes": service.max_body_bytes,
                           "max_candidates": service.max_candidates,
                           "max_queries": service.max_queries, "max_batch": service.max_batch,
                           "request_timeout_s": service.request_timeout_s}}

    @app.post("/annotatequestion", summary="Qanary component call", tags=["qanary"],
              openapi_extra=body_doc(QanaryMessage), responses=_errors(403))
    async def annotatequestion(request: Request) -> dict[str, Any]:
        """Score the upstream `qa:AnnotationOfAnswerSPARQL` candidates of the question in
        `inGraph` and write ranked annotations into `outGraph` (see
        :mod:`kgqa_validator.service.qanary`); answers the message."""
        from kgqa_validator.service.qanary import annotate

        message = await parse_body(request, QanaryMessage)
        return await engine.run(annotate, engine, message)

    return app
