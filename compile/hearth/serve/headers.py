"""Cross-origin isolation headers on every response, as a pure ASGI middleware.

Pure ASGI on purpose: Starlette's `@app.middleware("http")` (BaseHTTPMiddleware) runs the endpoint
in a separate task and relays a streaming body through a memory stream, so when a client goes
away mid-stream the endpoint's generator is not cancelled promptly and a model's request lock
could stay held (issue 19 item 1). This layer only edits the `http.response.start` message on its
way out; the body, and cancellation, pass through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ISOLATION_HEADERS: Mapping[str, str] = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class IsolationHeaders:
    """Adds ISOLATION_HEADERS to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] = ISOLATION_HEADERS) -> None:
        self.app = app
        self._extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}
                raw.extend((k, v) for k, v in self._extra if k not in present)
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
