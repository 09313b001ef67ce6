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

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers

    def response(self) -> JSONResponse:
        return error(self.status, self.message, param=self.param, code=self.code, headers=self.headers)


def error(
    status: int,
    message: str,
    kind: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "message": message,
            "type": kind or _TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _where(loc: tuple[int | str, ...]) -> str:
    # Pydantic names the union branch it tried ("input.list[str].3", "content.str"); people want the field path.
    parts = [
        str(x)
        for x in loc
        if not (isinstance(x, str) and ("[" in x or x in ("str", "int", "float", "bool", "list", "dict")))
    ]
    return ".".join(parts) or "body"


def validation_error(err: ValidationError) -> ApiError:
    """A 422 naming every field that failed (the openai client raises UnprocessableEntityError).

    A value that fits no branch of a union (content: a string or a list of parts) fails once per
    branch; only the most telling failures are kept: the deepest path, and at one path a failed check
    ("contains a lone surrogate") over a mere wrong type ("Input should be a valid list")."""
    found = [(_where(tuple(e["loc"])), e["type"], e["msg"]) for e in err.errors(include_url=False)]
    paths = {p for p, _, _ in found}
    found = [f for f in found if not any(q.startswith(f[0] + ".") for q in paths)]
    checked = {p for p, kind, _ in found if not kind.endswith("_type")}
    found = [f for f in found if f[0] not in checked or not f[1].endswith("_type")]
    lines: list[str] = []
    for path, _, msg in found:
        line = f"{path}: {msg}"
        if line not in lines:
            lines.append(line)
    more = f"; and {len(lines) - 8} more" if len(lines) > 8 else ""
    return ApiError(422, "invalid request: " + "; ".join(lines[:8]) + more, param=found[0][0] if found else None)
