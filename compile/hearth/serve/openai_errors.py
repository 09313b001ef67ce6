"""OpenAI's error shape for every /v1 answer that is not a success:
{"error": {"message", "type", "param", "code"}}, with OpenAI's status codes and types, so the
`openai` client raises its matching exception (NotFoundError, BadRequestError, ...)."""
from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import ValidationError

# OpenAI's error `type` per status (the client keys its exceptions off the status; `type` is for people).
_TYPES = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    499: "invalid_request_error",
    500: "server_error",
    503: "server_error",
}


class ApiError(Exception):
    """Raised anywhere below a /v1 handler; the handler turns it into `response()`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers

    def response(self) -> JSONResponse:
        return error(self.status, self.message, param=self.param, code=self.code, headers=self.headers)


def error(status: int, message: str, kind: str | None = None, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind or _TYPES.get(status, "invalid_request_error"), "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _where(loc: tuple[int | str, ...]) -> str:
    # Pydantic names the union branch it tried ("input.list[str].3", "content.str"); people want the field path.
    parts = [str(x) for x in loc if not (isinstance(x, str) and ("[" in x or x in ("str", "int", "float", "bool", "list", "dict")))]
    return ".".join(parts) or "body"


def validation_error(err: ValidationError) -> ApiError:
    """A 422 naming every field that failed (the openai client raises UnprocessableEntityError)."""
    seen: list[str] = []
    for e in err.errors(include_url=False):
        line = f"{_where(tuple(e['loc']))}: {e['msg']}"
        if line not in seen:
            seen.append(line)
    first = err.errors(include_url=False)[0]["loc"] if err.errors() else ()
    param = _where(tuple(first)) if first else None
    return ApiError(422, "invalid request: " + "; ".join(seen[:8]) + (f"; and {len(seen) - 8} more" if len(seen) > 8 else ""), param=param)
