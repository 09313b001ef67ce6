"""Refuse cross-site and DNS-rebinding requests before they reach a route (pure ASGI middleware).

The server listens on loopback and runs models for whoever asks, so a page on another site must not
be able to use it through the visitor's browser:

- **Host** (DNS rebinding): a page at `evil.example` whose name is re-pointed to 127.0.0.1 becomes
  same-origin with this server, but every request it makes still says `Host: evil.example`. Allowed by
  default: loopback names (`localhost`, `*.localhost`, 127.0.0.0/8, ::1), IP literals (a rebinding
  attack needs a DNS name it controls, an address cannot be re-pointed), and the name the server is
  bound to; more with `allowed_hosts` (`hearth serve --allow-host`, `*` for any). Else 421.
- **Origin**: a browser always sends it on a cross-origin POST and on every CORS-mode request, so when
  present it must equal this server's own origin (`http://<Host>`) or be in `allowed_origins`
  (`--allow-origin`, `*` for any). A request without Origin is not from another site's script (curl,
  the `openai` client, a same-origin GET, a no-cors load, which Cross-Origin-Resource-Policy already
  keeps from other sites) and passes. Else 403, whatever the method: a foreign page learns nothing,
  not even by timing a GET. Origins in
  `allowed_origins` also get CORS (preflight answered, Access-Control-Allow-Origin on replies): without
  it their pages could not send a JSON POST or read any reply. Other origins get no CORS headers.
- **Content-Type** on POST /v1/*: `application/json` only. A cross-site form or a `text/plain` fetch
  needs no CORS preflight, so without this a page could POST JSON text and have the model run even
  though it cannot read the answer. Else 415.

Refusals under /v1/ use OpenAI's error shape; the rest are plain text naming the fix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .openai_errors import error as openai_error

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def split_host(host: str) -> str:
    """The host name of a Host header value (`name[:port]` or `[v6]:port`), lowercased, no port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(name: str, bound_host: str | None, allowed: frozenset[str]) -> bool:
    if "*" in allowed or name in allowed:
        return True
    if name in LOOPBACK_NAMES or name.endswith(".localhost") or _is_ip(name):
        return True
    return bound_host is not None and split_host(bound_host) not in WILDCARD_BINDS and name == split_host(bound_host)


class RequestGuard:
    """See the module docstring. `bound_host`: the address `hearth serve --host` listens on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bound_host: str | None = None,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        api_prefix: str = "/v1",
    ) -> None:
        self.app = app
        self.bound_host = bound_host
        self.allowed_hosts = frozenset(split_host(h) if h != "*" else h for h in allowed_hosts)
        self.allowed_origins = frozenset(o.strip().rstrip("/").lower() for o in allowed_origins)
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        headers = Headers(scope=scope)
        granted = self._cors_origin(headers.get("origin"))
        if granted is None:
            await self.app(scope, receive, send)
            return
        cors = [(b"access-control-allow-origin", granted.encode("latin-1")), (b"vary", b"Origin")]
        if scope["method"].upper() == "OPTIONS" and "access-control-request-method" in headers:
            preflight = {
                "Access-Control-Allow-Methods": "GET, HEAD, POST",
                "Access-Control-Allow-Headers": headers.get("access-control-request-headers", "content-type"),
                "Access-Control-Max-Age": "600",
            }
            response = Response(status_code=204, headers=preflight)
            response.raw_headers.extend(cors)
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _cors_origin(self, origin: str | None) -> str | None:
        """The Origin to grant CORS to: only one named by `allowed_origins` (a same-origin page needs none),
        so that such a page can also send the JSON POSTs (which need a preflight) and read the answers."""
        if origin is None or not self.allowed_origins:
            return None
        origin = origin.strip()
        normal = origin.rstrip("/").lower()
        return origin if "*" in self.allowed_origins or normal in self.allowed_origins else None

    def check(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        path: str = scope.get("path", "")
        api = path == self.api_prefix or path.startswith(self.api_prefix + "/")
        host = headers.get("host")
        # No Host at all is HTTP/1.0 from a program; every browser sends one.
        if host is not None and not host_allowed(split_host(host), self.bound_host, self.allowed_hosts):
            return _refuse(
                api,
                421,
                "misdirected_request",
                f"refused: this server does not answer for the host {host!r} (a DNS-rebinding guard); "
                "use http://127.0.0.1 or http://localhost, or start it with `hearth serve --allow-host NAME`",
            )
        method = scope["method"].upper()
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host):
            return _refuse(
                api,
                403,
                "cross_origin_request",
                f"refused: a {method} from the page at {origin!r} (another origin); only this server's own "
                "pages may send it, or start the server with `hearth serve --allow-origin ORIGIN`",
            )
        if api and method == "POST":
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                got = f"Content-Type {media!r}" if media else "no Content-Type"
                return _refuse(
                    api,
                    415,
                    "unsupported_media_type",
                    f"refused: the request body must be JSON sent with Content-Type: application/json (got {got})",
                    param="Content-Type",
                )
        return None

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if "*" in self.allowed_origins or origin in self.allowed_origins:
            return True
        # "null" (a sandboxed frame, a file:// page) is never this server's origin.
        scheme, sep, netloc = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and host is not None and netloc == host.strip().lower()


def _refuse(api: bool, status: int, code: str, message: str, param: str | None = None) -> Response:
    if api:
        return openai_error(status, message, kind="invalid_request_error", param=param, code=code)
    return PlainTextResponse(message, status_code=status)
