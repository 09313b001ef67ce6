"""`hearth serve --native-api` against what an outside probe sent it (issue 19 items 4, 5, 6 and the
`openai` client as a drop-in): OpenAI's error shape for every /v1 failure, 4xx (never 500) for bad
values, the request limits, and the OpenAI fields the native engine now honours, over real HTTP on
the demo's real packages (llvm builds), checked against the native drivers they wrap."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hearth.serve.app import create_app
from hearth.serve.limits import ServeLimits
from test_serve import _start_server
from test_serve_native import CHAT_ID, EMBED_ID, MESSAGES, packages, request, sse_events  # noqa: F401 - packages is a fixture

DIM = 384  # all-MiniLM-L6-v2


@pytest.fixture(scope="module")
def port(packages: tuple[Path, Path]) -> Iterator[int]:  # noqa: F811
    from build_packages import DIST

    srv, thread, port = _start_server(create_app(DIST, None, native_api=True))
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def call(
    port: int, method: str, path: str, body: object = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], dict]:
    status, headers, data = request(port, method, path, body, raw)
    return status, headers, json.loads(data) if data else {}


def openai_error(doc: dict) -> dict:
    """The error object, after checking it is exactly OpenAI's shape."""
    assert set(doc) == {"error"}, doc
    err = doc["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str)
    return err


def chat_body(**kw: object) -> dict:
    return {"model": CHAT_ID, "messages": MESSAGES, **kw}


def greedy(port: int, **kw: object) -> dict:
    status, _, doc = call(port, "POST", "/v1/chat/completions", chat_body(**{"temperature": 0, "max_tokens": 16, **kw}))
    assert status == 200, doc
    return doc


# -- item 4: /v1/models/{id}, and OpenAI errors (404, 405) for every other /v1 path -------------------


def test_retrieve_model(port: int) -> None:
    status, _, doc = call(port, "GET", f"/v1/models/{CHAT_ID}")
    assert status == 200 and doc["id"] == CHAT_ID and doc["object"] == "model" and doc["task"] == "chat"
    listed = {m["id"]: m for m in call(port, "GET", "/v1/models")[2]["data"]}
    assert doc == listed[CHAT_ID]
    status, _, doc = call(port, "GET", "/v1/models/tiny-llama-trained%2Fq4f32_1")  # as the openai client spells it
    assert status == 200 and doc["id"] == CHAT_ID
    for path in ("/v1/models", f"/v1/models/{CHAT_ID}"):
        status, headers, data = request(port, "HEAD", path)
        assert status == 200 and data == b"" and int(headers["content-length"]) > 0, (path, status)
    status, headers, doc = call(port, "GET", "/v1/models/no-such-model")
    err = openai_error(doc)
    assert status == 404 and headers["content-type"] == "application/json"
    assert err["code"] == "model_not_found" and "no-such-model" in err["message"] and CHAT_ID in err["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("GET", "/v1/embeddings", "POST"),
        ("PUT", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/models", "GET, HEAD"),
        ("POST", "/v1/models", "GET, HEAD"),
        ("POST", f"/v1/models/{CHAT_ID}", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405(port: int, method: str, path: str, allow: str) -> None:
    status, headers, doc = call(port, method, path)
    err = openai_error(doc)
    assert status == 405 and headers["allow"] == allow and method in err["message"], (status, err)


@pytest.mark.parametrize(
    "path", ["/v1/completions", "/v1/nope", "/v1/", "/v1/chat", "/v1/" + "x" * 5000, "/v1/a%0Ab", "/v1/models/%0A%02"]
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_v1_path_is_404(port: int, method: str, path: str) -> None:
    status, headers, doc = call(port, method, path, body={} if method == "POST" else None)
    err = openai_error(doc)
    if path.startswith("/v1/models/"):
        # A model id may hold any character, even a newline (schemathesis found that one unrouted).
        assert (status, err["code"]) == (
            (405, "method_not_allowed") if method == "POST" else (404, "model_not_found")
        ), err
        return
    assert status == 404 and headers["content-type"] == "application/json" and "/v1/models" in err["message"]
    assert len(err["message"]) < 1000  # a 5,000-character path is not echoed back whole


@pytest.mark.parametrize("path", ["/models/" + "a" * 5000, "/" + "a" * 5000, "/models/" + "a/" * 2500])
def test_long_url_paths_are_4xx(port: int, path: str) -> None:
    status, _, data = request(port, "GET", path)
    assert 400 <= status < 500, (status, data[:200])


def test_symlink_loop_under_dist(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "m").mkdir(parents=True)
    (dist / "loop").symlink_to(dist / "loop")
    (dist / "m" / "q").symlink_to(dist / "m" / "q")
    srv, thread, port = _start_server(create_app(dist, None, native_api=True))
    try:
        status, _, doc = call(port, "GET", "/v1/models")
        assert status == 200 and doc["data"] == []
        status, _, doc = call(port, "POST", "/v1/chat/completions", chat_body(model="loop"))
        assert status == 404 and "loop" in openai_error(doc)["message"]
        status, _, doc = call(port, "GET", "/v1/models/m/q")
        assert status == 404 and openai_error(doc)["code"] == "model_not_found"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


# -- item 5: values that gave 500s ------------------------------------------------------------------


def test_negative_seed_is_a_seed(port: int) -> None:
    runs = [
        call(port, "POST", "/v1/chat/completions", chat_body(seed=-1, temperature=1.0, max_tokens=12)) for _ in range(2)
    ]
    assert [r[0] for r in runs] == [200, 200], runs
    assert runs[0][2]["choices"][0]["message"] == runs[1][2]["choices"][0]["message"]
    status, _, doc = call(port, "POST", "/v1/chat/completions", chat_body(seed=-(1 << 63), max_tokens=2))
    assert status == 200, doc


def test_tiny_temperature_is_greedy(port: int) -> None:
    want = greedy(port)["choices"][0]["message"]["content"]
    status, _, doc = call(port, "POST", "/v1/chat/completions", chat_body(temperature=1e-310, max_tokens=16))
    assert status == 200 and doc["choices"][0]["message"]["content"] == want, doc
    status, _, data = request(
        port, "POST", "/v1/chat/completions", chat_body(temperature=1e-310, max_tokens=16, stream=True)
    )
    events = sse_events(data)
    assert status == 200 and events[-1] == "[DONE]" and not any('"error"' in e for e in events)
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]) == want


@pytest.mark.parametrize(
    ("path", "raw", "param"),
    [
        (
            "/v1/chat/completions",
            '{"model": "%s", "messages": [{"role": "user", "content": "a\\ud800b"}]}'.replace("%s", CHAT_ID),
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            '{"model": "%s", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}'.replace(
                "%s", CHAT_ID
            ),
            "messages.0.content.0.text",
        ),
        (
            "/v1/chat/completions",
            '{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "stop": "\\ud800"}'.replace(
                "%s", CHAT_ID
            ),
            "stop",
        ),
        ("/v1/embeddings", '{"model": "%s", "input": "a\\ud800b"}'.replace("%s", EMBED_ID), "input"),
        ("/v1/embeddings", '{"model": "%s", "input": ["ok", "a\\udc00"]}'.replace("%s", EMBED_ID), "input.1"),
    ],
)
def test_lone_surrogates_are_422_naming_the_field(port: int, path: str, raw: str, param: str) -> None:
    status, _, doc = call(port, "POST", path, raw=raw.encode())
    err = openai_error(doc)
    assert status == 422 and err["param"] == param and param in err["message"] and "surrogate" in err["message"], err


@pytest.mark.parametrize(
    ("raw", "needle", "param"),
    [
        (b"[" * 100_000, "nests", None),
        (b'{"model": "x", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests", None),
        (b'{"model": "m", "messages": [], "seed": ' + b"7" * 5000 + b"}", "seed: a number", "seed"),
        (b'{"model": "m", "messages": [], "max_tokens": -' + b"9" * 5000 + b"}", "max_tokens: a number", "max_tokens"),
        (b'{"model": "m", "messages": [], "temperature": NaN}', "NaN is not a JSON number", None),
        (b'{"model": "m", "messages": [], "temperature": Infinity}', "Infinity is not a JSON number", None),
        (b'\xff\xfe{"model"', "not valid JSON", None),
    ],
)
def test_unparseable_bodies_are_400(port: int, raw: bytes, needle: str, param: str | None) -> None:
    status, _, doc = call(port, "POST", "/v1/chat/completions", raw=raw)
    err = openai_error(doc)
    assert status == 400 and needle in err["message"] and err["param"] == param, err
    assert "set_int_max_str_digits" not in err["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat_body(seed=int("9" * 4000)), "seed"),  # valid JSON, out of int64 range
        (chat_body(max_tokens=1 << 40), "max_tokens"),
        (chat_body(temperature=1e308), "temperature"),
        (chat_body(top_logprobs=21, logprobs=True), "top_logprobs"),
        (chat_body(presence_penalty=2.5), "presence_penalty"),
        (chat_body(logit_bias={"x": 1}), "logit_bias"),
        (chat_body(messages=[{"role": "user", "content": [[[[[["deep"]]]]]]}]), "messages"),
    ],
)
def test_out_of_range_values_are_422_naming_the_field(port: int, body: dict, param: str) -> None:
    status, _, doc = call(port, "POST", "/v1/chat/completions", body)
    err = openai_error(doc)
    assert status == 422 and (err["param"] or "").startswith(param) and param in err["message"], err


# -- item 6: limits (configurable through HEARTH_SERVE_* variables) -----------------------------------


@pytest.fixture(scope="module")
def limited(packages: tuple[Path, Path]) -> Iterator[int]:  # noqa: F811
    from build_packages import DIST

    env = {
        "HEARTH_SERVE_MAX_BODY_BYTES": "4096",
        "HEARTH_SERVE_MAX_EMBEDDING_INPUTS": "4",
        "HEARTH_SERVE_MAX_EMBEDDING_TOKENS": "64",
        "HEARTH_SERVE_MAX_COMPLETION_TOKENS": "6",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        app = create_app(DIST, None, native_api=True)  # limits are read when the router is built
    srv, thread, port = _start_server(app)
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def test_defaults_bound_every_request() -> None:
    d = ServeLimits()
    assert d.max_body_bytes <= 8 << 20 and d.max_embedding_inputs <= 512 and d.max_embedding_tokens <= 65536
    assert d.max_completion_tokens <= 4096 and d.max_waiting <= 64
    assert set(ServeLimits.env_names()) == {
        "HEARTH_SERVE_MAX_BODY_BYTES",
        "HEARTH_SERVE_MAX_EMBEDDING_INPUTS",
        "HEARTH_SERVE_MAX_EMBEDDING_TOKENS",
        "HEARTH_SERVE_MAX_COMPLETION_TOKENS",
        "HEARTH_SERVE_MAX_WAITING",
    }
    docs = (Path(__file__).resolve().parents[1] / "docs" / "serve-limits.md").read_text()
    assert all(name in docs for name in ServeLimits.env_names()), "every limit is documented"


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_bad_limit_values_are_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="HEARTH_SERVE_MAX_WAITING"):
        ServeLimits.from_env({"HEARTH_SERVE_MAX_WAITING": value})


def test_body_size_limit(limited: int) -> None:
    status, _, doc = call(limited, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": "x" * 5000})
    err = openai_error(doc)
    assert status == 413 and "4096 bytes" in err["message"] and "HEARTH_SERVE_MAX_BODY_BYTES" in err["message"]
    # Chunked (no Content-Length): counted while reading.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", limited, timeout=30)
    conn.request(
        "POST",
        "/v1/embeddings",
        iter([b'{"model": "x", "input": "', b"y" * 5000, b'"}']),
        {"Content-Type": "application/json"},
        encode_chunked=True,
    )
    r = conn.getresponse()
    assert r.status == 413 and "4096 bytes" in openai_error(json.loads(r.read()))["message"]


def test_embedding_input_and_token_limits(limited: int) -> None:
    status, _, doc = call(limited, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": ["a"] * 5})
    err = openai_error(doc)
    assert (
        status == 400
        and err["param"] == "input"
        and "at most 4" in err["message"]
        and "HEARTH_SERVE_MAX_EMBEDDING_INPUTS" in err["message"]
    )
    status, _, doc = call(limited, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": ["word " * 40, "word " * 40]})
    err = openai_error(doc)
    assert (
        status == 400
        and err["param"] == "input"
        and "at most 64" in err["message"]
        and "HEARTH_SERVE_MAX_EMBEDDING_TOKENS" in err["message"]
    )
    status, _, doc = call(limited, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": ["a", "b", "c", "d"]})
    assert status == 200 and len(doc["data"]) == 4


def test_completion_token_limit(limited: int) -> None:
    status, _, doc = call(limited, "POST", "/v1/chat/completions", chat_body(max_tokens=7))
    err = openai_error(doc)
    assert status == 400 and err["param"] == "max_tokens" and "at most 6" in err["message"]
    status, _, doc = call(
        limited, "POST", "/v1/chat/completions", chat_body(temperature=0)
    )  # no max_tokens: the limit applies
    assert status == 200 and doc["usage"]["completion_tokens"] <= 6


# -- the openai client's common fields ----------------------------------------------------------------


def _reference_greedy(
    package: Path, messages: list[dict], n: int, presence: float = 0.0, frequency: float = 0.0
) -> tuple[list[int], list[float]]:
    """Tokens and their raw logprobs from load_decoder with OpenAI's penalties applied by hand."""
    from collections import Counter

    from transformers import AutoTokenizer

    from hearth.native import load_decoder

    decoder, config = load_decoder(package)
    tok = AutoTokenizer.from_pretrained(str(package))
    text = tok.apply_chat_template(
        messages, chat_template=config["chat_template"], tokenize=False, add_generation_prompt=True
    )
    logits = decoder.prefill(tok(text, add_special_tokens=False)["input_ids"])
    eos = set(config["eos_token_id"]) | {tok.eos_token_id}
    counts: Counter[int] = Counter()
    tokens, logprobs = [], []
    for _ in range(n):
        raw = logits.astype(np.float64)
        x = raw.copy()
        for t, c in counts.items():
            x[t] -= frequency * c + presence
        t = int(np.argmax(x))
        if t in eos:
            break
        tokens.append(t)
        logprobs.append(float(raw[t] - (raw.max() + np.log(np.exp(raw - raw.max()).sum()))))
        counts[t] += 1
        logits = decoder.decode(t)
    return tokens, logprobs


def test_penalties_match_a_reference(port: int, packages: tuple[Path, Path]) -> None:  # noqa: F811
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(packages[0]))
    plain = greedy(port, max_tokens=24)["choices"][0]["message"]["content"]
    doc = greedy(port, max_tokens=24, presence_penalty=0.7, frequency_penalty=1.5)
    ref, _ = _reference_greedy(packages[0], MESSAGES, 24, presence=0.7, frequency=1.5)
    assert doc["choices"][0]["message"]["content"] == tok.decode(ref, skip_special_tokens=True)
    assert doc["choices"][0]["message"]["content"] != plain, (
        "the penalties must change this answer (the plain one repeats tokens)"
    )


def test_logprobs(port: int, packages: tuple[Path, Path]) -> None:  # noqa: F811
    doc = greedy(port, max_tokens=10, logprobs=True, top_logprobs=3)
    content = doc["choices"][0]["logprobs"]["content"]
    assert len(content) == doc["usage"]["completion_tokens"]
    _, ref = _reference_greedy(packages[0], MESSAGES, 10)
    np.testing.assert_allclose([c["logprob"] for c in content], ref[: len(content)], atol=1e-4)
    for c in content:
        top = c["top_logprobs"]
        assert len(top) == 3 and top[0]["token"] == c["token"] and top[0]["logprob"] == pytest.approx(c["logprob"])
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True) and all(
            t["logprob"] <= 0 for t in top
        )
        assert c["bytes"] is None or bytes(c["bytes"]).decode() == c["token"]
    assert greedy(port, max_tokens=4)["choices"][0]["logprobs"] is None
    # Streamed: the same entries, spread over the chunks.
    status, _, data = request(
        port,
        "POST",
        "/v1/chat/completions",
        chat_body(temperature=0, max_tokens=10, logprobs=True, top_logprobs=3, stream=True),
    )
    chunks = [json.loads(e) for e in sse_events(data)[:-1]]
    streamed = [c for ch in chunks for c in ((ch["choices"][0]["logprobs"] or {}).get("content") or [])]
    assert streamed == content


def test_content_parts_and_developer_role(port: int) -> None:
    system, user = MESSAGES[0]["content"], MESSAGES[1]["content"]
    want = greedy(port)["choices"][0]["message"]["content"]
    as_parts = [
        {"role": "developer", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "text", "text": user}]},
    ]
    assert greedy(port, messages=as_parts)["choices"][0]["message"]["content"] == want
    halves = [
        {"role": "system", "content": system},
        {"role": "user", "content": [{"type": "text", "text": user[:10]}, {"type": "text", "text": user[10:]}]},
    ]
    joined = [{"role": "system", "content": system}, {"role": "user", "content": user[:10] + "\n" + user[10:]}]
    assert (
        greedy(port, messages=halves)["choices"][0]["message"]["content"]
        == greedy(port, messages=joined)["choices"][0]["message"]["content"]
    )


@pytest.mark.parametrize(
    ("body", "status", "param", "needle"),
    [
        # Tools and structured output are served (tests/test_serve_structured.py); what stays refused:
        (chat_body(functions=[{"name": "f"}]), 400, "functions", "legacy function calling"),
        (chat_body(function_call="auto"), 400, "function_call", "legacy function calling"),
        (chat_body(tool_choice="auto"), 400, "tool_choice", "needs tools"),
        (chat_body(response_format={"type": "json_xml"}), 422, "response_format", "is not supported"),
        (
            chat_body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}}),
            400,
            "response_format",
            '"not"',
        ),
        (
            chat_body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}]),
            422,
            "messages",
            "only text content parts",
        ),
        (
            chat_body(messages=[{"role": "function", "content": "x", "name": "f"}]),
            422,
            "messages",
            "'function' messages are not supported",
        ),
        (chat_body(top_logprobs=2), 422, "top_logprobs", "needs logprobs"),
        (chat_body(logit_bias={"99999999": 5}), 400, "logit_bias", "names token 99999999"),
    ],
)
def test_unsupported_fields_are_refused_by_name(port: int, body: dict, status: int, param: str, needle: str) -> None:
    got, _, doc = call(port, "POST", "/v1/chat/completions", body)
    err = openai_error(doc)
    assert got == status and (err["param"] or "").startswith(param) and needle in err["message"], (got, err)


def test_text_response_format_and_logit_bias_are_honoured(port: int, packages: tuple[Path, Path]) -> None:  # noqa: F811
    from transformers import AutoTokenizer

    assert (
        greedy(port, response_format={"type": "text"})["choices"][0]["message"]["content"]
        == greedy(port)["choices"][0]["message"]["content"]
    )
    tok = AutoTokenizer.from_pretrained(str(packages[0]))
    forced = tok.encode(" river", add_special_tokens=False)[-1]
    doc = greedy(port, max_tokens=3, logit_bias={str(forced): 100})
    assert doc["choices"][0]["message"]["content"] == tok.decode([forced] * 3, skip_special_tokens=True)


def test_embeddings_dimensions_truncation_and_token_ids(port: int) -> None:
    status, _, doc = call(port, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": "river", "dimensions": DIM})
    assert status == 200 and len(doc["data"][0]["embedding"]) == DIM and doc["truncated"] == []
    status, _, doc = call(port, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": "river", "dimensions": 128})
    err = openai_error(doc)
    assert status == 400 and err["param"] == "dimensions" and f"{DIM}-dimensional" in err["message"]
    long = "word " * 400
    status, headers, doc = call(port, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": ["short", long]})
    assert status == 200 and headers["x-hearth-truncated-inputs"] == "1"
    assert doc["truncated"] == [{"index": 1, "tokens": 402, "max_tokens": 256}]  # 400 words + [CLS] [SEP]
    assert doc["usage"]["prompt_tokens"] == 3 + 256
    status, _, doc = call(
        port, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": ["short", long], "truncation": "error"}
    )
    err = openai_error(doc)
    assert status == 400 and err["code"] == "input_too_long" and "input 1: 402 tokens" in err["message"]
    for ids in ([1, 2, 3], [[1, 2], [3]]):
        status, _, doc = call(port, "POST", "/v1/embeddings", {"model": EMBED_ID, "input": ids})
        err = openai_error(doc)
        assert status == 422 and err["param"] == "input" and "token-id inputs are not supported" in err["message"]


# -- the official openai client -------------------------------------------------------------------------


def test_openai_client_drop_in(port: int) -> None:
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
    assert CHAT_ID in [m.id for m in client.models.list()]
    model = client.models.retrieve(CHAT_ID)
    assert model.id == CHAT_ID and model.object == "model"
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        client.models.retrieve("no-such-model")
    messages = [
        {"role": "developer", "content": MESSAGES[0]["content"]},
        {"role": "user", "content": [{"type": "text", "text": MESSAGES[1]["content"]}]},
    ]
    whole = client.chat.completions.create(
        model=CHAT_ID,
        messages=messages,
        temperature=0,
        max_tokens=16,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        logprobs=True,
        top_logprobs=2,
        seed=-1,
    )
    assert (
        whole.choices[0].logprobs is not None
        and len(whole.choices[0].logprobs.content or []) == whole.usage.completion_tokens
    )
    stream = client.chat.completions.create(
        model=CHAT_ID,
        messages=messages,
        temperature=0,
        max_tokens=16,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        usage = chunk.usage or usage
    assert (
        "".join(pieces) == whole.choices[0].message.content
        and usage is not None
        and usage.completion_tokens == whole.usage.completion_tokens
    )
    emb = client.embeddings.create(model=EMBED_ID, input=["The river is wide.", "pasta"])  # the client asks for base64
    assert [len(d.embedding) for d in emb.data] == [DIM, DIM]
    assert emb.model_extra is not None and emb.model_extra["truncated"] == []
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=EMBED_ID, input="x", dimensions=16)
    with pytest.raises(openai.BadRequestError, match="legacy function calling"):
        client.chat.completions.create(model=CHAT_ID, messages=messages, functions=[{"name": "f", "parameters": {}}])
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=messages)
    assert e.value.code == "model_not_found"
    assert os.environ.get("HEARTH_SERVE_MAX_BODY_BYTES") is None  # the limited fixture did not leak its settings
