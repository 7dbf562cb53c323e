"""Errors as HTTP codes with one sentence: ``{"error": "..."}``, the sentence naming the value and what to do.

``ServiceError`` is what the service's own code raises (with its Prometheus kind); the handlers put FastAPI's and
Starlette's errors -- a bad query (422), an unknown path (404) or method (405), anything unexpected (500) -- in the
same shape, and count each by its kind.
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from segkit.errors import UserError

CLIENT_GONE = 499  # nginx's code for a client that closed the connection: no one reads it, the metrics count it


class ServiceError(Exception):
    """A request the service answers with ``status`` and one sentence; ``kind`` labels it in the metrics."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, count) -> None:
    """Every error of ``app`` as ``{"error": sentence}``; ``count(kind)`` is called once per error."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        count(exc.kind)
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        count("bad_query")
        return error_response(422, validation_sentence(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            count("not_found")
            message = f"there is no {request.url.path}; the endpoints are listed at /docs."
        elif exc.status_code == 405:
            count("method_not_allowed")
            message = f"{request.url.path} does not take {request.method}; see /docs for its methods."
        else:
            count("http")
            message = str(exc.detail)
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(UserError)
    async def model_error(request: Request, exc: UserError):
        # The predictor's own sentence (say, a new photo size's bundle needs PyTorch, which is not installed):
        # the request was valid, the service could not serve it, and its sentence says what the operator can do.
        count("model")
        return error_response(500, f"the service cannot segment this photo: {exc}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        count("internal")  # Starlette logs the traceback after this answer
        return error_response(500, f"the service failed on this request ({type(exc).__name__}); its log has the "
                                   "details.")


def validation_sentence(errors) -> str:
    """FastAPI's list of validation errors as one sentence about the first: the parameter, the value, the rule."""
    if not errors:
        return "the request is invalid; see /docs for the parameters."
    first = errors[0]
    where = [str(part) for part in first.get("loc", ())]
    place = {"query": "query parameter", "header": "header", "path": "path parameter"}.get(where[0] if where else "",
                                                                                          "field")
    name = ".".join(where[1:]) or "value"
    rule = first.get("msg", "is invalid")
    rule = rule[0].lower() + rule[1:] if rule else rule
    value = f"={first['input']!r}" if "input" in first and first["input"] is not None else ""
    return f"{place} {name}{value} is invalid: {rule.rstrip('.')}."
