"""Route helpers shared by the file routes (app.py) and the native API (native_api.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.convertors import Convertor, register_url_convertor


class _AnyPath(Convertor[str]):
    """Starlette's `path` convertor is `.*`, which stops at a newline: /v1/models/%0A then matched no
    route and got Starlette's own {"detail": "Not Found"} (found by the schemathesis run)."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())  # "{name:anypath}" in a route


def get_and_head(target: FastAPI | APIRouter, path: str, **kwargs: Any) -> Callable[[Callable], Callable]:
    """GET in the OpenAPI schema, plus HEAD outside it: one `api_route(methods=["GET", "HEAD"])` gives both
    the same operation id, which FastAPI warns about each time it builds the schema."""

    def register(fn: Callable) -> Callable:
        target.add_api_route(path, fn, methods=["GET"], **kwargs)
        target.add_api_route(path, fn, methods=["HEAD"], include_in_schema=False, **kwargs)
        return fn

    return register
