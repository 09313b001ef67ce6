"""`hearth serve --native-api` with clients that go away (issue 19 items 1 and 6): read part of a
stream and close (politely or with a reset), over and over, some at once; abandon a long completion
or a big embeddings request. Afterwards the model must answer the next request within seconds (no
freeze, and the abandoned work stopped), and /healthz must answer throughout.

The chat model is SmolLM2-135M (the demo's, llvm build): a few tokens per second on two busy cores,
so an abandoned 1,000-token answer left running would hold the model for minutes, far past the
bounds asserted here. Real HTTP (uvicorn on 127.0.0.1), raw sockets for the rude clients."""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from hearth.serve.app import create_app
from test_serve import _start_server
from test_serve_native import CHAT, CHAT_ID, EMBED, EMBED_ID

SMOL = ("SmolLM2-135M-Instruct", "q4f32_gguf")
SMOL_ID = "/".join(SMOL)
# A normal request after the abuse: prefill (~40 tokens) plus 4 tokens takes ~1 s here; an abandoned
# generation still running would take minutes. Generous for a loaded CI machine.
ANSWER_WITHIN_S = 20.0
HEALTH_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    from build_packages import DIST, ensure_package

    ensure_package(*SMOL)
    ensure_package(*EMBED)
    ensure_package(*CHAT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARTH_SERVE_MAX_WAITING", "1")  # read when the router is built
        app = create_app(DIST, None, native_api=True)
    srv, thread, port = _start_server(app)
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def _send(port: int, path: str, body: dict) -> socket.socket:
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    s.sendall(head.encode() + data)
    return s


def _close(s: socket.socket, reset: bool) -> None:
    if reset:  # RST instead of FIN: the rudest way to go
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def partial_stream(port: int, nbytes: int, reset: bool, seed: int) -> int:
    """Ask for a long streamed answer, read `nbytes` of it, hang up. Bytes read."""
    s = _send(
        port,
        "/v1/chat/completions",
        {
            "model": SMOL_ID,
            "stream": True,
            "max_tokens": 1000,
            "temperature": 1.0,
            "seed": seed,
            "messages": [{"role": "user", "content": "Tell me a long story about a river and a city."}],
        },
    )
    got = 0
    while got < nbytes:
        chunk = s.recv(min(4096, nbytes - got))
        if not chunk:
            break
        got += len(chunk)
    _close(s, reset)
    return got


def timed_chat(port: int, model: str = SMOL_ID, timeout: float = ANSWER_WITHIN_S) -> float:
    """Seconds a short completion takes; fails when it does not come within `timeout`."""
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    body = {"model": model, "max_tokens": 4, "temperature": 0, "messages": [{"role": "user", "content": "Say hi."}]}
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
    except TimeoutError:
        pytest.fail(f"{model} gave no answer within {timeout} s: frozen, or still busy with abandoned work")
    assert r.status == 200, data[:300]
    return time.monotonic() - t


def timed_health(port: int) -> float:
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_WITHIN_S * 5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    return time.monotonic() - t


def test_partial_stream_reads_never_freeze_the_model(port: int) -> None:
    timed_chat(port, timeout=300)  # loads the model
    rng = random.Random(19)
    # Mostly a few chunks (the role chunk is ~200 bytes, each token ~230), twice the probe's ~6 KB.
    sizes = [1, 200, 600, 6000, 300, 1200, 1, 900, 6000, 450, 2000, 250]
    after: list[float] = []
    health: list[float] = []
    for i, n in enumerate(sizes):
        readers = [threading.Thread(target=partial_stream, args=(port, n, rng.random() < 0.5, i))]
        if i % 3 == 2:  # a second reader at once: one of them waits for the model, then leaves too
            readers.append(
                threading.Thread(target=partial_stream, args=(port, rng.choice([1, 400]), rng.random() < 0.5, 100 + i))
            )
        for r in readers:
            r.start()
        health.append(timed_health(port))
        for r in readers:
            r.join(timeout=120)
            assert not r.is_alive()
        if i % 4 == 3:
            after.append(timed_chat(port))
    after.append(timed_chat(port))
    print(
        f"partial reads: {len(sizes)} rounds ({sum(1 for i in range(len(sizes)) if i % 3 == 2)} with two readers); "
        f"next request answered in {', '.join(f'{t:.2f}' for t in after)} s; /healthz max {max(health):.2f} s"
    )
    assert max(health) < HEALTH_WITHIN_S


def test_abandoned_completion_stops(port: int) -> None:
    timed_chat(port, timeout=300)
    s = _send(
        port,
        "/v1/chat/completions",
        {
            "model": SMOL_ID,
            "max_tokens": 1000,
            "temperature": 1.0,
            "seed": 3,
            "messages": [{"role": "user", "content": "Write a very long essay about rivers."}],
        },
    )
    time.sleep(2.0)  # well into generating
    _close(s, reset=False)
    took = timed_chat(port)
    print(f"after an abandoned 1000-token completion the next one took {took:.2f} s")


def test_abandoned_embeddings_stop_and_health_answers(port: int) -> None:
    texts = [f"sentence {i} about rivers, cities, bridges and the sea " * 4 for i in range(256)]
    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    warm.request(
        "POST",
        "/v1/embeddings",
        json.dumps({"model": EMBED_ID, "input": "warm up"}),
        {"Content-Type": "application/json"},
    )
    assert warm.getresponse().status == 200
    s = _send(port, "/v1/embeddings", {"model": EMBED_ID, "input": texts})
    health = []
    for _ in range(4):
        time.sleep(0.25)
        health.append(timed_health(port))  # while the encoder works
    _close(s, reset=True)
    t = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_WITHIN_S)
    conn.request(
        "POST",
        "/v1/embeddings",
        json.dumps({"model": EMBED_ID, "input": ["one", "two"]}),
        {"Content-Type": "application/json"},
    )
    r = conn.getresponse()
    assert r.status == 200 and len(json.loads(r.read())["data"]) == 2
    took = time.monotonic() - t
    print(f"256 embeddings abandoned after ~1 s: next request {took:.2f} s; /healthz meanwhile max {max(health):.2f} s")
    assert max(health) < HEALTH_WITHIN_S


def test_other_models_answer_while_one_is_busy(port: int) -> None:
    s = _send(
        port,
        "/v1/chat/completions",
        {
            "model": SMOL_ID,
            "max_tokens": 200,
            "temperature": 1.0,
            "seed": 5,
            "stream": True,
            "messages": [{"role": "user", "content": "Tell me a story."}],
        },
    )
    try:
        assert s.recv(100)  # generating
        took = timed_chat(port, model=CHAT_ID, timeout=60)
        assert took < ANSWER_WITHIN_S
    finally:
        _close(s, reset=True)


def test_waiting_queue_is_bounded_and_leavers_are_dropped(port: int) -> None:
    """HEARTH_SERVE_MAX_WAITING=1 here: one request runs, one waits, the next gets 429. A waiter that
    hangs up leaves the queue, and the model serves the next request once the running one's client goes."""
    timed_chat(port, timeout=300)
    running = _send(
        port,
        "/v1/chat/completions",
        {
            "model": SMOL_ID,
            "stream": True,
            "max_tokens": 1000,
            "temperature": 1.0,
            "seed": 9,
            "messages": [{"role": "user", "content": "Tell me a long story."}],
        },
    )
    assert running.recv(100)  # streaming: the model is taken
    waiter = _send(
        port,
        "/v1/chat/completions",
        {"model": SMOL_ID, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
    )
    time.sleep(1.0)  # queued by now
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": SMOL_ID, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}),
        {"Content-Type": "application/json"},
    )
    r = conn.getresponse()
    err = json.loads(r.read())["error"]
    assert (
        r.status == 429
        and r.getheader("retry-after") == "5"
        and err["code"] == "model_busy"
        and "HEARTH_SERVE_MAX_WAITING" in err["message"]
    )
    _close(waiter, reset=True)  # gives up while waiting
    time.sleep(1.0)
    _close(running, reset=False)
    took = timed_chat(port)
    print(f"429 past one waiter; after the waiter and the stream left, the next request took {took:.2f} s")
