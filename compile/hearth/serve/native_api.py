"""The optional native fallback API (`hearth serve --native-api`; off by default).

OpenAI-compatible endpoints that run the same dist/ packages natively through TVM (their `llvm`
build), for a client that cannot or will not run the model itself:

    GET  /v1/models
    POST /v1/chat/completions   messages, max_tokens, temperature, top_p, seed, stop, stream
    POST /v1/embeddings         input: a string or a list of strings

Model ids are package folders relative to dist/ ("tiny-llama-trained/q4f32_1"); a bare model id
picks its best CPU variant. Errors are OpenAI-shaped: {"error": {"message", "type", "param", "code"}}.
Inference runs in worker threads, never on the event loop, one request per model at a time.
When the API is off every /v1/ path answers 404 saying how to turn it on.
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .native_models import (
    ChatModel,
    EmbeddingModel,
    Generation,
    ModelNotFound,
    ModelSlot,
    NativeModels,
    PromptTooLong,
    Sampling,
)

ENABLE_HINT = "start the server with `hearth serve --native-api` (or `make demo NATIVE_API=1`)"
MAX_EMBED_INPUTS = 2048

# -- request bodies ----------------------------------------------------------------------------


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] = 1
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(s == "" for s in stops):
            raise ValueError("a stop sequence must not be empty")
        return stops


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    input: str | Annotated[list[str], Field(min_length=1, max_length=MAX_EMBED_INPUTS)]
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


# -- errors ------------------------------------------------------------------------------------


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)


def _validation_message(err: ValidationError) -> tuple[str, str | None]:
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    first = err.errors()[0]["loc"] if err.errors() else ()
    return "invalid request: " + "; ".join(parts), (str(first[0]) if first else None)


M = TypeVar("M", bound=BaseModel)


async def parse(request: Request, schema: type[M]) -> M | JSONResponse:
    """The body as `schema`, or a 400 (not JSON) / 422 (wrong fields) naming the problem."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return error(400, f"the request body is not valid JSON ({e}); send a JSON object with Content-Type: application/json")
    if not isinstance(body, dict):
        return error(400, "the request body must be a JSON object")
    try:
        return schema.model_validate(body)
    except ValidationError as e:
        message, param = _validation_message(e)
        return error(422, message, param=param)


# -- running models off the event loop ---------------------------------------------------------

T = TypeVar("T")


class Runner:
    """Model calls in worker threads. Per model: an asyncio lock held for a whole request (a
    streamed completion spans many calls and owns the KV cache meanwhile) and the slot's thread
    lock around each call (a call still running after its client went away finishes first)."""

    def __init__(self) -> None:
        self._request_locks: dict[str, asyncio.Lock] = {}

    def request_lock(self, slot: ModelSlot) -> asyncio.Lock:
        return self._request_locks.setdefault(slot.info.id, asyncio.Lock())

    async def call(self, slot: ModelSlot, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with slot.lock:
                return fn(*args)

        return await asyncio.to_thread(locked)


def _load_error(slot: ModelSlot, e: Exception) -> JSONResponse:
    return error(500, f"could not load {slot.info.id} natively: {e}", kind="server_error", code="model_load_failed")


# -- the router --------------------------------------------------------------------------------


def native_router(dist: Path) -> APIRouter:
    router = APIRouter(prefix="/v1")
    models = NativeModels(dist)
    runner = Runner()

    @router.get("/models")
    def list_models() -> dict:
        return {
            "object": "list",
            "data": [
                {"id": p.id, "object": "model", "created": p.created, "owned_by": "hearth", "task": p.task, "model_id": p.model_id, "quantization": p.quantization}
                for p in models.list()
            ],
        }

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
        req = await parse(request, ChatRequest)
        if isinstance(req, JSONResponse):
            return req
        try:
            slot = models.resolve(req.model, "chat")
        except ModelNotFound as e:
            return error(404, str(e), param="model", code="model_not_found")
        try:
            model = await runner.call(slot, slot.get)
        except Exception as e:  # noqa: BLE001 - a broken package must not take the server down
            return _load_error(slot, e)
        assert isinstance(model, ChatModel)
        messages = [m.model_dump(include={"role", "content"}) for m in req.messages]
        try:
            prompt = await runner.call(slot, model.prompt_ids, messages)
            budget = model.check_fits(len(prompt), req.max_completion_tokens or req.max_tokens)
        except PromptTooLong as e:
            return error(400, str(e), param="messages", code="context_length_exceeded")
        except ValueError as e:
            return error(400, str(e), param="messages")
        sampling = Sampling(
            temperature=model.default_temperature if req.temperature is None else req.temperature,
            top_p=model.default_top_p if req.top_p is None else req.top_p,
            rng=np.random.default_rng(req.seed),
        )
        gen = Generation(model.tokenizer, model.eos_ids, list(req.stop or []), budget)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": slot.info.id}
        lock = runner.request_lock(slot)
        if req.stream:
            include_usage = req.stream_options is not None and req.stream_options.include_usage
            stream = _stream(runner, slot, model, prompt, sampling, gen, meta, include_usage, lock)
            return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        async with lock:
            text = await runner.call(slot, model.start, prompt, sampling, gen)
            while gen.finish_reason is None:
                text += await runner.call(slot, model.step, sampling, gen)
        return JSONResponse({
            **meta,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": gen.finish_reason, "logprobs": None}],
            "usage": _usage(len(prompt), gen),
            "system_fingerprint": f"hearth-native-{slot.info.id}",
        })

    @router.post("/embeddings", response_model=None)
    async def embeddings(request: Request) -> JSONResponse:
        req = await parse(request, EmbeddingRequest)
        if isinstance(req, JSONResponse):
            return req
        try:
            slot = models.resolve(req.model, "embedding")
        except ModelNotFound as e:
            return error(404, str(e), param="model", code="model_not_found")
        texts = [req.input] if isinstance(req.input, str) else list(req.input)
        try:
            model = await runner.call(slot, slot.get)
        except Exception as e:  # noqa: BLE001
            return _load_error(slot, e)
        assert isinstance(model, EmbeddingModel)
        async with runner.request_lock(slot):
            vectors, tokens = await runner.call(slot, model.embed, texts)
        data = []
        for i, v in enumerate(vectors):
            row = v.astype("<f4")
            value: list[float] | str = base64.b64encode(row.tobytes()).decode() if req.encoding_format == "base64" else row.tolist()
            data.append({"object": "embedding", "index": i, "embedding": value})
        return JSONResponse({"object": "list", "data": data, "model": slot.info.id, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return router


def _usage(prompt_tokens: int, gen: Generation) -> dict[str, int]:
    # An end-of-sequence token ends the answer but is not part of it; everything else counts.
    completion = len(gen.ids)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _stream(
    runner: Runner,
    slot: ModelSlot,
    model: ChatModel,
    prompt: list[int],
    sampling: Sampling,
    gen: Generation,
    meta: dict[str, Any],
    include_usage: bool,
    lock: asyncio.Lock,
) -> AsyncIterator[str]:
    """OpenAI chunk stream: a role chunk, content deltas, a finish chunk, [usage], [DONE].
    Holds the model's request lock from its first chunk to its end (released also when the client
    goes away mid-stream: the generator is cancelled inside `async with`)."""
    base = {**meta, "object": "chat.completion.chunk", "system_fingerprint": f"hearth-native-{slot.info.id}"}

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]})

    async with lock:
        yield chunk({"role": "assistant", "content": ""})
        try:
            piece = await runner.call(slot, model.start, prompt, sampling, gen)
            while True:
                if piece:
                    yield chunk({"content": piece})
                if gen.finish_reason is not None:
                    break
                piece = await runner.call(slot, model.step, sampling, gen)
        except Exception as e:  # noqa: BLE001 - headers are sent: report in-band, as OpenAI does
            yield _sse({"error": {"message": f"generation failed: {e}", "type": "server_error", "param": None, "code": None}})
            return
        yield chunk({}, gen.finish_reason)
        if include_usage:
            yield _sse({**base, "choices": [], "usage": _usage(len(prompt), gen)})
        yield "data: [DONE]\n\n"


def disabled_router() -> APIRouter:
    """/v1/* when the API is off: a 404 that says how to turn it on (not the app's HTML shell)."""
    router = APIRouter(prefix="/v1")

    @router.api_route("/{path:path}", methods=["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH"])
    def off(path: str) -> JSONResponse:
        return error(404, f"the native fallback API (/v1/{path}) is off; {ENABLE_HINT}", code="native_api_disabled")

    return router
