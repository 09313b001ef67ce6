"""The optional native fallback API (`hearth serve --native-api`; off by default).

OpenAI-compatible endpoints that run the same dist/ packages natively through TVM (their `llvm`
build), for a client that cannot or will not run the model itself:

    GET  /v1/models
    GET  /v1/models/{id}
    POST /v1/chat/completions   (request bodies: native_schemas.py; response_format grammars:
                                 structured.py; tools and tool calls: tool_calls.py)
    POST /v1/embeddings

Model ids are package folders relative to dist/ ("tiny-llama-trained/q4f32_1"); a bare model id
picks its best CPU variant. Every /v1 error, unknown paths and wrong methods included, is
OpenAI-shaped: {"error": {"message", "type", "param", "code"}} (openai_errors.py). Inference runs in
worker threads, one request per model at a time, and stops when the client goes away
(native_runner.py); request size and work are bounded (limits.py). When the API is off every /v1/
path answers 404 saying how to turn it on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from . import routing  # noqa: F401 - registers the "anypath" convertor these routes use
from .limits import ServeLimits
from .native_models import (
    Cancelled,
    ChatModel,
    EmbeddingModel,
    Generation,
    ModelNotFound,
    ModelSlot,
    NativeModels,
    PackageInfo,
    PromptTooLong,
    Sampled,
    Sampling,
    TokenConstraint,
)
from .native_runner import ClientGone, Runner, watch_disconnect
from .native_schemas import UNSUPPORTED_CHAT, ChatRequest, EmbeddingRequest, openapi_body
from .openai_errors import ApiError, error, validation_error
from .structured import Constraint, GrammarSpec, StructuredError, grammars_for, response_format_spec
from .tool_calls import ToolCallStream, ToolPlan, parse_tool_calls, plan_tools, template_input

log = logging.getLogger("hearth.serve")

ENABLE_HINT = "start the server with `hearth serve --native-api` (or `make demo NATIVE_API=1`)"
# The client never sees it (it left); nginx's code for "client closed request", for the access log.
CLIENT_GONE = 499

# -- request bodies ----------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (before reading it all when Content-Length says so)."""
    too_big = ApiError(
        413,
        f"the request body is larger than {limit} bytes; send less (fewer or shorter inputs), or raise "
        "HEARTH_SERVE_MAX_BODY_BYTES when starting the server",
        code="request_too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def parse(
    request: Request, schema: type[M], limits: ServeLimits, precheck: Callable[[dict], None] | None = None
) -> M:
    """The body as `schema`; ApiError 400 (not JSON), 413 (too big) or 422 (wrong fields) naming the problem."""
    raw = await read_body(request, limits.max_body_bytes)
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError(
            400, "the request body nests JSON arrays or objects too deeply to parse; send a flat JSON object"
        ) from None
    except ValueError as e:  # JSONDecodeError, bad UTF-8, NaN/Infinity, an integer past 4300 digits
        raise _not_json(raw, e) from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if precheck is not None:
        precheck(body)
    try:
        return schema.model_validate(body)
    except ValidationError as e:
        raise validation_error(e) from None
    except RecursionError:
        raise ApiError(400, "the request body nests too deeply; send a flat JSON object") from None


_HUGE_INT = re.compile(rb'"([^"\\]{1,64})"\s*:\s*\[?\s*-?[0-9]{4000}')


def _not_json(raw: bytes, e: ValueError) -> ApiError:
    if "integer string conversion" in str(e):
        # Python refuses to convert integers past 4,300 digits; say which field, not how to lift the limit.
        m = _HUGE_INT.search(raw)
        field = m.group(1).decode("utf-8", "replace") if m else None
        where = f"{field}: " if field else ""
        return ApiError(
            400,
            f"{where}a number in the request body has thousands of digits; send a value in the field's range",
            param=field,
        )
    return ApiError(
        400, f"the request body is not valid JSON ({e}); send a JSON object with Content-Type: application/json"
    )


def _structured_error(e: StructuredError) -> ApiError:
    message = str(e)
    if e.keyword and e.keyword not in message:
        message += f" (keyword {e.keyword!r})"
    return ApiError(400, message, param=e.param)


def _output_plan(req: ChatRequest) -> tuple[ToolPlan, GrammarSpec | None]:
    """What the request's tools and response_format ask of the output, checked before any model work."""
    try:
        plan = plan_tools(
            [t.model_dump() for t in req.tools] if req.tools else None,
            req.tool_choice.model_dump()
            if req.tool_choice is not None and not isinstance(req.tool_choice, str)
            else req.tool_choice,
        )
        fmt = response_format_spec(req.response_format.spec() if req.response_format is not None else None)
    except StructuredError as e:
        raise _structured_error(e) from None
    calls = plan.grammar()
    if calls is not None and fmt is not None:
        raise ApiError(
            400,
            f"response_format {req.response_format.type!r} and tool_choice {plan.mode!r} both fix the output's form; "  # type: ignore[union-attr]
            'send one of them (or tool_choice "auto")',
            param="response_format",
        )
    return plan, calls or fmt


def _constraint(model: ChatModel, spec: GrammarSpec) -> Constraint:
    """The request's grammar matcher (compiled once per model and spec)."""
    return grammars_for(model).constraint(spec)


def _chat_precheck(body: dict) -> None:
    for name, what in UNSUPPORTED_CHAT.items():
        if body.get(name) not in (None, False, [], {}):
            raise ApiError(
                400,
                f"{name}: {what} is not supported by hearth's native API; leave {name} out",
                param=name,
                code="unsupported_parameter",
            )


# -- the router --------------------------------------------------------------------------------


def _model_entry(p: PackageInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "model",
        "created": p.created,
        "owned_by": "hearth",
        "task": p.task,
        "model_id": p.model_id,
        "quantization": p.quantization,
    }


ROUTES: dict[str, tuple[str, ...]] = {
    "models": ("GET", "HEAD"),
    "chat/completions": ("POST",),
    "embeddings": ("POST",),
}


def _allowed(path: str) -> tuple[str, ...] | None:
    """The methods a known /v1 path takes (None: no such endpoint)."""
    path = path.strip("/")
    if path in ROUTES:
        return ROUTES[path]
    if path.startswith("models/") and len(path) > len("models/"):
        return ROUTES["models"]
    return None


def native_router(dist: Path, limits: ServeLimits | None = None) -> APIRouter:
    """The /v1 routes. `limits`: ServeLimits.from_env() (HEARTH_SERVE_* variables) unless given."""
    limits = limits or ServeLimits.from_env()
    router = APIRouter(prefix="/v1")
    models = NativeModels(dist)
    runner = Runner(limits.max_waiting)

    def api(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        """Every ApiError below a handler becomes its OpenAI-shaped response."""

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as e:
                return e.response()
            except ClientGone:
                return error(CLIENT_GONE, "the client closed the connection", code="client_closed_request")
            except Exception as e:  # noqa: BLE001 - a bug still answers in OpenAI's shape; the log keeps the traceback
                log.exception("%s %s failed", request.method, request.url.path)
                return error(
                    500, f"internal error ({type(e).__name__}: {e}); see the server log", code="internal_error"
                )

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    async def load(slot: ModelSlot) -> ChatModel | EmbeddingModel:
        try:
            return await runner.call(slot, slot.get)
        except Exception as e:  # noqa: BLE001 - a broken package must not take the server down
            raise ApiError(500, f"could not load {slot.info.id} natively: {e}", code="model_load_failed") from e

    def resolve(model: str, task: str) -> ModelSlot:
        try:
            return models.resolve(model, task)
        except ModelNotFound as e:
            raise ApiError(404, str(e), param="model", code="model_not_found") from None

    @router.get("/models")
    def list_models() -> dict:
        return {"object": "list", "data": [_model_entry(p) for p in models.list()]}

    @router.get("/models/{model_id:anypath}", response_model=None)
    def retrieve_model(model_id: str) -> dict | JSONResponse:
        found = [p for p in models.list() if p.id == model_id]
        if not found:
            names = ", ".join(p.id for p in models.list()) or "none"
            return error(
                404,
                f"no model {model_id!r} with a native build under {dist}/ (available: {names})",
                param="model",
                code="model_not_found",
            )
        return _model_entry(found[0])

    # HEAD answers as GET does, left out of /openapi.json (one operation id per function).
    router.add_api_route("/models", list_models, methods=["HEAD"], include_in_schema=False)
    router.add_api_route(
        "/models/{model_id:anypath}", retrieve_model, methods=["HEAD"], include_in_schema=False, response_model=None
    )

    # -- chat ------------------------------------------------------------------------------------

    @router.post("/chat/completions", response_model=None, openapi_extra=openapi_body(ChatRequest))
    @api
    async def chat_completions(request: Request) -> Response:
        req = await parse(request, ChatRequest, limits, _chat_precheck)
        slot = resolve(req.model, "chat")
        model = await load(slot)
        assert isinstance(model, ChatModel)
        for tok in req.logit_bias or {}:
            if int(tok) >= model.vocab_size:
                raise ApiError(
                    400,
                    f"logit_bias names token {tok}, but {slot.info.id} has {model.vocab_size} tokens",
                    param="logit_bias",
                )
        plan, grammar = _output_plan(req)
        messages, tools = template_input(
            [m.template_message() for m in req.messages],
            plan.template_tools(),
            model.chat_template,
            free_call=plan.mode == "auto",
        )
        try:
            prompt = await runner.call(slot, model.prompt_ids, messages, tools, req.chat_template_kwargs)
        except ValueError as e:
            raise ApiError(400, str(e), param="messages") from None
        constraint: TokenConstraint | None = None
        if grammar is not None:
            try:
                constraint = await runner.call(slot, _constraint, model, grammar)
            except StructuredError as e:
                raise _structured_error(e) from None
        asked = req.max_completion_tokens or req.max_tokens
        if asked is not None and asked > limits.max_completion_tokens:
            which = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
            raise ApiError(
                400,
                f"{which} is {asked}; this server generates at most {limits.max_completion_tokens} tokens per request "
                "(HEARTH_SERVE_MAX_COMPLETION_TOKENS)",
                param=which,
            )
        try:
            budget = min(model.check_fits(len(prompt), asked), limits.max_completion_tokens)
        except PromptTooLong as e:
            raise ApiError(400, str(e), param="messages", code="context_length_exceeded") from None
        sampling = Sampling(
            temperature=model.default_temperature if req.temperature is None else req.temperature,
            top_p=model.default_top_p if req.top_p is None else req.top_p,
            rng=np.random.default_rng(None if req.seed is None else req.seed % (1 << 64)),
            presence_penalty=req.presence_penalty or 0.0,
            frequency_penalty=req.frequency_penalty or 0.0,
            logit_bias={int(k): v for k, v in (req.logit_bias or {}).items()},
            logprobs=bool(req.logprobs),
            top_logprobs=req.top_logprobs or 0,
        )
        gen = Generation(model.tokenizer, model.eos_ids, list(req.stop or []), budget)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": slot.info.id}
        gate = runner.gate(slot)
        await gate.acquire(request)
        cancel = threading.Event()
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            # Owns the gate from here on, and always releases it: see native_runner's docstring.
            runner.spawn(
                _produce(
                    runner,
                    slot,
                    model,
                    prompt,
                    sampling,
                    gen,
                    constraint,
                    ToolCallStream(plan.names) if plan.parses else None,
                    meta,
                    include_usage,
                    bool(req.logprobs),
                    queue,
                    cancel,
                    request,
                    gate.release,
                )
            )
            return StreamingResponse(
                _drain(queue, cancel),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        try:
            async with watch_disconnect(request, cancel):
                text = await runner.call(slot, model.start, prompt, sampling, gen, constraint)
                while gen.finish_reason is None:
                    if cancel.is_set():
                        raise ClientGone()
                    text += await runner.call(slot, model.step, sampling, gen, constraint)
        finally:
            gate.release()
        logprobs = {"content": model.logprobs_content(gen.sampled), "refusal": None} if req.logprobs else None
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = gen.finish_reason
        if plan.parses:
            content, calls = parse_tool_calls(text, plan.names)
            if calls:
                message = {"role": "assistant", "content": content, "tool_calls": calls}
                finish = "tool_calls" if finish == "stop" else finish
        return JSONResponse(
            {
                **meta,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish,
                        "logprobs": logprobs,
                    }
                ],
                "usage": _usage(len(prompt), gen),
                "system_fingerprint": f"hearth-native-{slot.info.id}",
            }
        )

    # -- embeddings ------------------------------------------------------------------------------

    @router.post("/embeddings", response_model=None, openapi_extra=openapi_body(EmbeddingRequest))
    @api
    async def embeddings(request: Request) -> Response:
        req = await parse(request, EmbeddingRequest, limits)
        texts = [req.input] if isinstance(req.input, str) else list(req.input)
        if len(texts) > limits.max_embedding_inputs:
            raise ApiError(
                400,
                f"input has {len(texts)} items; this server embeds at most {limits.max_embedding_inputs} per request: "
                "split them over several requests (or raise HEARTH_SERVE_MAX_EMBEDDING_INPUTS)",
                param="input",
            )
        slot = resolve(req.model, "embedding")
        model = await load(slot)
        assert isinstance(model, EmbeddingModel)
        tokens = await runner.call(slot, model.tokenize, texts)
        total = sum(len(t) for t in tokens.ids)
        if total > limits.max_embedding_tokens:
            raise ApiError(
                400,
                f"input is {total} tokens (after truncation to {model.max_tokens} per input); "
                f"this server embeds at most {limits.max_embedding_tokens} per request: "
                "split it over several requests (or raise HEARTH_SERVE_MAX_EMBEDDING_TOKENS)",
                param="input",
            )
        if req.truncation == "error" and tokens.truncated:
            i, n = tokens.truncated[0]
            raise ApiError(
                400,
                f"{len(tokens.truncated)} input(s) exceed {slot.info.id}'s {model.max_tokens}-token limit "
                f"(input {i}: {n} tokens); "
                'split them, or leave truncation out (or set it to "truncate") to have them cut',
                param="input",
                code="input_too_long",
            )
        gate = runner.gate(slot)
        await gate.acquire(request)
        cancel = threading.Event()
        try:
            async with watch_disconnect(request, cancel):
                if req.dimensions is not None and req.dimensions != (
                    dim := await runner.call(slot, lambda: model.dimension)
                ):
                    raise ApiError(
                        400,
                        f"dimensions: {slot.info.id} makes {dim}-dimensional vectors and cannot shorten them; "
                        f"leave dimensions out or pass {dim}",
                        param="dimensions",
                        code="unsupported_parameter",
                    )
                try:
                    vectors = await runner.call(slot, model.embed_ids, tokens.ids, cancel.is_set)
                except Cancelled:
                    raise ClientGone() from None
        finally:
            gate.release()
        data = []
        for i, v in enumerate(vectors):
            row = v.astype("<f4")
            value: list[float] | str = (
                base64.b64encode(row.tobytes()).decode() if req.encoding_format == "base64" else row.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": slot.info.id,
                "usage": {"prompt_tokens": total, "total_tokens": total},
                # As the SDK's engine reports it (openai.ts EmbeddingTruncation): never cut silently.
                "truncated": [{"index": i, "tokens": n, "max_tokens": model.max_tokens} for i, n in tokens.truncated],
            },
            headers={"X-Hearth-Truncated-Inputs": str(len(tokens.truncated))},
        )

    # -- everything else under /v1 ---------------------------------------------------------------

    @router.api_route(
        "/{path:anypath}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False
    )
    def unknown(path: str, request: Request) -> JSONResponse:
        allowed = _allowed(path)
        if allowed is not None:
            return error(
                405,
                f"{request.method} is not allowed on /v1/{path}; use {' or '.join(allowed)}",
                code="method_not_allowed",
                headers={"Allow": ", ".join(allowed)},
            )
        endpoints = "GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, POST /v1/embeddings"
        return error(404, f"no endpoint /v1/{path[:200]}; the native API serves {endpoints}", code="unknown_url")

    return router


def _usage(prompt_tokens: int, gen: Generation) -> dict[str, int]:
    # An end-of-sequence token ends the answer but is not part of it; everything else counts.
    completion = len(gen.ids)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _produce(
    runner: Runner,
    slot: ModelSlot,
    model: ChatModel,
    prompt: list[int],
    sampling: Sampling,
    gen: Generation,
    constraint: TokenConstraint | None,
    tools: ToolCallStream | None,
    meta: dict[str, Any],
    include_usage: bool,
    logprobs: bool,
    queue: asyncio.Queue[str | None],
    cancel: threading.Event,
    request: Request,
    release: Callable[[], None],
) -> None:
    """OpenAI's chunk stream into `queue`: a role chunk, content (and, with `tools`, tool-call) deltas, a
    finish chunk, [usage], [DONE], then None. Owns the model (the gate) until it returns, and always
    returns: at the end of the answer, at an error (reported in-band: the headers are sent), or once
    `cancel` is set."""
    base = {**meta, "object": "chat.completion.chunk", "system_fingerprint": f"hearth-native-{slot.info.id}"}
    sent = 0  # tokens whose logprobs went out

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        nonlocal sent
        lp = None
        if logprobs and (finish is not None or "content" in delta):
            fresh: list[Sampled] = gen.sampled[sent:]
            sent = len(gen.sampled)
            lp = {"content": model.logprobs_content(fresh), "refusal": None}
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": lp}]})

    try:
        async with watch_disconnect(request, cancel):
            queue.put_nowait(chunk({"role": "assistant", "content": ""}))
            piece = await runner.call(slot, model.start, prompt, sampling, gen, constraint)
            while not cancel.is_set():
                if piece:
                    for delta in tools.feed(piece) if tools is not None else [{"content": piece}]:
                        queue.put_nowait(chunk(delta))
                if gen.finish_reason is not None:
                    break
                piece = await runner.call(slot, model.step, sampling, gen, constraint)
            if gen.finish_reason is not None:
                finish = gen.finish_reason
                if tools is not None:
                    for delta in tools.finish():
                        queue.put_nowait(chunk(delta))
                    if tools.calls and finish == "stop":
                        finish = "tool_calls"
                queue.put_nowait(chunk({}, finish))
                if include_usage:
                    queue.put_nowait(_sse({**base, "choices": [], "usage": _usage(len(prompt), gen)}))
                queue.put_nowait("data: [DONE]\n\n")
    except Exception as e:  # noqa: BLE001 - headers are sent: report in-band, as OpenAI does
        queue.put_nowait(
            _sse({"error": {"message": f"generation failed: {e}", "type": "server_error", "param": None, "code": None}})
        )
    finally:
        release()
        queue.put_nowait(None)


async def _drain(queue: asyncio.Queue[str | None], cancel: threading.Event) -> AsyncIterator[str]:
    """The response body: what _produce queued. Leaving early (the client went away) cancels it."""
    try:
        while (item := await queue.get()) is not None:
            yield item
    finally:
        cancel.set()


def disabled_router() -> APIRouter:
    """/v1/* when the API is off: a 404 that says how to turn it on (not the app's HTML shell)."""
    router = APIRouter(prefix="/v1")

    @router.api_route("/{path:anypath}", methods=["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH"])
    def off(path: str) -> JSONResponse:
        return error(
            404, f"the native fallback API (/v1/{path[:200]}) is off; {ENABLE_HINT}", code="native_api_disabled"
        )

    return router
