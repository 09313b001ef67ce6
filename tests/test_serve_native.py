"""`hearth serve --native-api`: the OpenAI-compatible fallback endpoints, over real HTTP (uvicorn on
127.0.0.1), running the demo's real packages natively through TVM (llvm builds), compared with the
native drivers they wrap (load_decoder's greedy tokens, NativeEncoder's embeddings)."""

from __future__ import annotations

import base64
import http.client
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hearth.serve.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from build_packages import DIST, ensure_package  # noqa: E402
from test_serve import _start_server as _start  # noqa: E402 - one way to run a test server

CHAT = ("tiny-llama-trained", "q4f32_1")  # the demo's chat package (f32: the CPU variant)
EMBED = ("all-MiniLM-L6-v2", "q8f32_1")  # the demo's encoder package (make demo builds it too)
CHAT_ID, EMBED_ID = "/".join(CHAT), "/".join(EMBED)
MESSAGES = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "[1] The river is wide. Question: how wide is the river?"},
]


@pytest.fixture(scope="module")
def packages() -> tuple[Path, Path]:
    return ensure_package(*CHAT), ensure_package(*EMBED)


@pytest.fixture(scope="module")
def port(packages: tuple[Path, Path]) -> Iterator[int]:
    srv, thread, port = _start(create_app(DIST, None, native_api=True))
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def request(
    port: int, method: str, path: str, body: object = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def post(port: int, path: str, body: object) -> tuple[int, dict]:
    status, _, data = request(port, "POST", path, body)
    return status, json.loads(data)


def chat(port: int, **kw: object) -> dict:
    status, doc = post(port, "/v1/chat/completions", {"model": CHAT_ID, "messages": MESSAGES, **kw})
    assert status == 200, doc
    return doc


def sse_events(data: bytes) -> list[str]:
    """The `data:` payloads of an SSE body; every event must be exactly one `data:` line."""
    events = data.decode().split("\n\n")
    assert events[-1] == "", "the stream must end with a blank line"
    out = []
    for e in events[:-1]:
        assert e.startswith("data: ") and "\n" not in e, f"malformed SSE event: {e!r}"
        out.append(e[len("data: ") :])
    return out


# -- off by default ----------------------------------------------------------------------------


def test_off_by_default(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "index.html").write_text("<!doctype html><title>demo</title>")
    srv, thread, port = _start(create_app(DIST, app_dir))  # what `hearth serve` does without the flag
    try:
        for method, path, body in [
            ("GET", "/v1/models", None),
            ("POST", "/v1/chat/completions", {"model": CHAT_ID, "messages": MESSAGES}),
            ("POST", "/v1/embeddings", {"model": EMBED_ID, "input": "x"}),
        ]:
            status, headers, data = request(port, method, path, body)
            assert status == 404 and headers["content-type"] == "application/json", (path, data[:100])
            err = json.loads(data)["error"]
            assert "--native-api" in err["message"] and err["code"] == "native_api_disabled"
        assert json.loads(request(port, "GET", "/healthz")[2])["native_api"] is False
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


# -- chat --------------------------------------------------------------------------------------


def test_models_and_health(port: int) -> None:
    status, _, data = request(port, "GET", "/v1/models")
    doc = json.loads(data)
    assert status == 200 and doc["object"] == "list"
    by_id = {m["id"]: m for m in doc["data"]}
    assert by_id[CHAT_ID]["task"] == "chat" and by_id[EMBED_ID]["task"] == "embedding"
    assert all(m["object"] == "model" for m in doc["data"])
    assert json.loads(request(port, "GET", "/healthz")[2])["native_api"] is True


def test_greedy_equals_native_decoder(port: int, packages: tuple[Path, Path]) -> None:
    from transformers import AutoTokenizer

    from hearth.native import load_decoder

    doc = chat(port, temperature=0, max_tokens=24)
    # The reference: the package's own tokenizer + template, load_decoder's greedy loop.
    decoder, config = load_decoder(packages[0])
    tok = AutoTokenizer.from_pretrained(str(packages[0]))
    text = tok.apply_chat_template(
        MESSAGES, chat_template=config["chat_template"], tokenize=False, add_generation_prompt=True
    )
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    tokens = decoder.greedy(prompt, 24)
    eos = set(config["eos_token_id"]) | {tok.eos_token_id}
    if any(t in eos for t in tokens):
        tokens = tokens[: next(i for i, t in enumerate(tokens) if t in eos)]
    assert doc["object"] == "chat.completion" and doc["model"] == CHAT_ID
    choice = doc["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": tok.decode(tokens, skip_special_tokens=True)}
    assert choice["finish_reason"] == ("length" if len(tokens) == 24 else "stop")
    assert doc["usage"] == {
        "prompt_tokens": len(prompt),
        "completion_tokens": len(tokens),
        "total_tokens": len(prompt) + len(tokens),
    }
    assert len(choice["message"]["content"].strip()) > 0


def test_stream_is_well_formed_and_matches(port: int) -> None:
    whole = chat(port, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
    status, headers, data = request(
        port,
        "POST",
        "/v1/chat/completions",
        {
            "model": CHAT_ID,
            "messages": MESSAGES,
            "temperature": 0,
            "max_tokens": 24,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = sse_events(data)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    finish = chunks[-2]["choices"][0]
    assert finish["delta"] == {} and finish["finish_reason"] in ("stop", "length")
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]]
    assert sum(1 for p in pieces if p) >= 3, "the answer must arrive in several pieces"
    assert "".join(pieces) == whole


def test_sampling_seed_and_stop(port: int) -> None:
    a = chat(port, temperature=0.9, top_p=0.9, seed=7, max_tokens=16)["choices"][0]["message"]["content"]
    b = chat(port, temperature=0.9, top_p=0.9, seed=7, max_tokens=16)["choices"][0]["message"]["content"]
    assert a == b, "the same seed must give the same sample"
    greedy = chat(port, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
    assert len(greedy) >= 12
    stop = greedy[8:11]
    cut = chat(port, temperature=0, max_tokens=24, stop=[stop])
    assert cut["choices"][0]["message"]["content"] == greedy[: greedy.find(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    # Streamed, the stop string must not leak out either (held back until it is ruled out).
    _, _, data = request(
        port,
        "POST",
        "/v1/chat/completions",
        {"model": CHAT_ID, "messages": MESSAGES, "temperature": 0, "max_tokens": 24, "stop": stop, "stream": True},
    )
    chunks = [json.loads(e) for e in sse_events(data)[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == greedy[: greedy.find(stop)]


def test_concurrent_requests_are_serialised(port: int) -> None:
    expected = chat(port, temperature=0, max_tokens=12)["choices"][0]["message"]["content"]
    results: list[str] = []

    def one() -> None:
        results.append(chat(port, temperature=0, max_tokens=12)["choices"][0]["message"]["content"])

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [expected] * 3


# -- embeddings --------------------------------------------------------------------------------


def test_embeddings_equal_native_encoder(port: int, packages: tuple[Path, Path]) -> None:
    from hearth.native.encoder import NativeEncoder

    texts = ["The river is wide.", "A completely different sentence about cooking pasta at home.", ""]
    status, doc = post(port, "/v1/embeddings", {"model": EMBED_ID, "input": texts})
    assert status == 200 and doc["object"] == "list" and doc["model"] == EMBED_ID
    got = np.array([d["embedding"] for d in sorted(doc["data"], key=lambda d: d["index"])], np.float32)
    ref = NativeEncoder.from_package(packages[1]).embed(texts)
    cos = (got * ref.embeddings).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref.embeddings, axis=1))
    assert got.shape == ref.embeddings.shape and cos.min() >= 0.9999, cos
    assert doc["usage"]["prompt_tokens"] == sum(ref.token_counts)
    status, one = post(port, "/v1/embeddings", {"model": EMBED_ID, "input": texts[0], "encoding_format": "base64"})
    assert status == 200 and len(one["data"]) == 1
    decoded = np.frombuffer(base64.b64decode(one["data"][0]["embedding"]), "<f4")
    np.testing.assert_allclose(decoded, got[0], rtol=1e-5, atol=1e-6)


# -- bad requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/chat/completions", b"{not json", 400, "not valid JSON"),
        ("/v1/chat/completions", [1, 2], 400, "JSON object"),
        ("/v1/chat/completions", {"model": CHAT_ID}, 422, "messages"),
        (
            "/v1/chat/completions",
            {"model": CHAT_ID, "messages": [{"role": "robot", "content": "hi"}]},
            422,
            "messages.0.role",
        ),
        ("/v1/chat/completions", {"model": CHAT_ID, "messages": MESSAGES, "temperature": 3}, 422, "temperature"),
        ("/v1/chat/completions", {"model": CHAT_ID, "messages": MESSAGES, "max_tokens": 0}, 422, "max_tokens"),
        (
            "/v1/chat/completions",
            {"model": CHAT_ID, "messages": MESSAGES, "stop": ["a", "b", "c", "d", "e"]},
            422,
            "at most 4",
        ),
        ("/v1/chat/completions", {"model": CHAT_ID, "messages": MESSAGES, "n": 2}, 422, "n"),
        (
            "/v1/chat/completions",
            {"model": "no-such-model", "messages": MESSAGES},
            404,
            "no chat package 'no-such-model'",
        ),
        ("/v1/chat/completions", {"model": EMBED_ID, "messages": MESSAGES}, 404, "is an embedding model"),
        (
            "/v1/chat/completions",
            {"model": CHAT_ID, "messages": [{"role": "user", "content": "word " * 400}]},
            400,
            "256-token context window",
        ),
        ("/v1/chat/completions", {"model": CHAT_ID, "messages": MESSAGES, "max_tokens": 250}, 400, "ask for at most"),
        ("/v1/embeddings", {"model": EMBED_ID, "input": []}, 422, "input"),
        ("/v1/embeddings", {"model": EMBED_ID, "input": [[1, 2, 3]]}, 422, "input"),
        ("/v1/embeddings", {"model": CHAT_ID, "input": "x"}, 404, "is a chat model"),
    ],
)
def test_bad_requests(port: int, path: str, body: object, status: int, needle: str) -> None:
    got, headers, data = request(port, "POST", path, raw=body if isinstance(body, bytes) else json.dumps(body).encode())
    assert got == status, data[:300]
    err = json.loads(data)["error"]
    assert needle in err["message"], err
