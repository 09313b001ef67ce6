"""Running native model work for HTTP requests without letting one request stall the rest.

- Model calls run in worker threads (never on the event loop: /healthz stays responsive), each under
  the slot's thread lock.
- One request at a time per model (a decoder's KV cache is one mutable object), in arrival order,
  through a ModelGate: at most `max_waiting` wait, more get 429.
- Ownership of a model never depends on a response body being iterated to its end. A streamed
  completion is produced by a task of its own that holds the gate and always releases it (finished,
  failed or cancelled); the response body only reads what the task produced. A client that reads part
  of a stream and goes away can therefore not freeze the model, whether or not the body generator is
  ever closed (issue 19, item 1).
- Work stops between two model calls once the client is gone: the body's `finally`, or a watcher
  polling `request.is_disconnected()`, sets a threading.Event that the work loops check.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from starlette.requests import Request

from .native_models import ModelSlot
from .openai_errors import ApiError

T = TypeVar("T")
DISCONNECT_POLL_S = 0.2


class ClientGone(Exception):
    """The client disconnected before its request got the model."""


class ModelGate:
    """FIFO ownership of one model by one request at a time."""

    def __init__(self, name: str, max_waiting: int) -> None:
        self.name = name
        self.max_waiting = max_waiting
        self._lock = asyncio.Lock()
        self._waiting = 0

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def acquire(self, request: Request) -> None:
        """Own the model; ClientGone if the client left while waiting, ApiError(429) if too many wait."""
        if self._lock.locked() and self._waiting >= self.max_waiting:
            raise ApiError(
                429,
                f"{self.name} is busy with {self._waiting} requests waiting; retry later "
                "(or raise HEARTH_SERVE_MAX_WAITING when starting the server)",
                code="model_busy",
                headers={"Retry-After": "5"},
            )
        self._waiting += 1
        acquiring = asyncio.ensure_future(self._lock.acquire())
        try:
            while True:
                done, _ = await asyncio.wait({acquiring}, timeout=DISCONNECT_POLL_S)
                if done:
                    acquiring.result()
                    return
                if await request.is_disconnected():
                    raise ClientGone()
        except BaseException:
            # Our wait ended without a result (client gone, our task cancelled): never leave the lock
            # taken by an acquire nobody will release.
            if not acquiring.cancel() and not acquiring.cancelled() and acquiring.exception() is None:
                self._lock.release()
            raise
        finally:
            self._waiting -= 1

    def release(self) -> None:
        self._lock.release()


class Runner:
    """Model calls in worker threads, one gate per model, and the background tasks of streams."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._gates: dict[str, ModelGate] = {}
        self._tasks: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones

    def gate(self, slot: ModelSlot) -> ModelGate:
        gate = self._gates.get(slot.info.id)
        if gate is None:
            gate = self._gates[slot.info.id] = ModelGate(slot.info.id, self.max_waiting)
        return gate

    async def call(self, slot: ModelSlot, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with slot.lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


@contextlib.asynccontextmanager
async def watch_disconnect(request: Request, cancel: threading.Event) -> AsyncIterator[None]:
    """While the block runs, set `cancel` as soon as the client disconnects."""

    async def poll() -> None:
        while not cancel.is_set():
            if await request.is_disconnected():
                cancel.set()
                return
            await asyncio.sleep(DISCONNECT_POLL_S)

    task = asyncio.ensure_future(poll())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
