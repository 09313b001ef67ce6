"""`hearth serve` over real HTTP (uvicorn on 127.0.0.1): MIME, Range, ETag/immutable,
isolation headers, gzip, health, and path traversal refused in every spelling."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from hearth.serve.app import create_app
from hearth.weights.manifest import write_manifest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    root = tmp_path_factory.mktemp("site")
    dist, app_dir = root / "dist", root / "app"
    pkg = dist / "m" / "q4f16_1"
    pkg.mkdir(parents=True)
    (pkg / "m.wasm").write_bytes(b"\0asm\1\0\0\0" + bytes(range(256)) * 8)
    (pkg / "params_shard_0.bin").write_bytes(bytes(range(256)) * 64)
    (pkg / "mlc-chat-config.json").write_text(json.dumps({"x": "y" * 2000}))
    write_manifest(pkg, {"model_id": "m", "quantization": "q4f16_1", "model_task": "chat"})
    app_dir.mkdir()
    (app_dir / "index.html").write_text("<!doctype html><title>demo</title>")
    (app_dir / "app.js").write_text("console.log('hi');" * 100)
    (root / "secret.txt").write_text("do not serve")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(dist, app_dir), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield "127.0.0.1", port, pkg
    srv.should_exit = True
    thread.join(timeout=10)


def get(
    server: tuple[str, int, Path], path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server[0], server[1], timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)  # the path goes out verbatim
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_health_and_package_listing(server) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = get(server, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = get(server, "/models/")
    assert json.loads(body)[0]["url"] == "/models/m/q4f16_1/"


def test_wasm_mime_and_isolation_headers(server) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = get(server, "/models/m/q4f16_1/m.wasm")
    assert status == 200 and headers["content-type"] == "application/wasm" and body[:4] == b"\0asm"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"


def test_range_requests(server) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = get(server, "/models/m/q4f16_1/params_shard_0.bin", {"Range": "bytes=10-19"})
    assert status == 206 and body == bytes(range(10, 20)) and headers["content-range"] == "bytes 10-19/16384"
    status, _, _ = get(server, "/models/m/q4f16_1/params_shard_0.bin", {"Range": "bytes=99999-"})
    assert status == 416


def test_etag_is_manifest_sha_and_immutable_when_addressed_by_hash(server) -> None:  # type: ignore[no-untyped-def]
    pkg: Path = server[2]
    sha = next(
        f["sha256"] for f in json.loads((pkg / "hearth-manifest.json").read_text())["files"] if f["path"] == "m.wasm"
    )
    status, headers, _ = get(server, "/models/m/q4f16_1/m.wasm")
    assert headers["etag"] == f'"{sha}"' and headers["cache-control"] == "no-cache"
    status, headers, _ = get(server, f"/models/m/q4f16_1/m.wasm?sha256={sha}")
    assert "immutable" in headers["cache-control"]
    status, _, body = get(server, "/models/m/q4f16_1/m.wasm", {"If-None-Match": f'"{sha}"'})
    assert status == 304 and body == b""
    status, _, _ = get(server, "/models/m/q4f16_1/m.wasm?sha256=" + "0" * 64)
    assert status == 409


def test_json_and_js_are_gzipped(server) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = get(server, "/models/m/q4f16_1/mlc-chat-config.json", {"Accept-Encoding": "gzip"})
    assert headers.get("content-encoding") == "gzip" and json.loads(gzip.decompress(body))["x"].startswith("yyy")
    status, headers, body = get(server, "/app.js", {"Accept-Encoding": "gzip"})
    assert headers["content-type"].startswith("text/javascript") and headers.get("content-encoding") == "gzip"
    status, headers, _ = get(server, "/models/m/q4f16_1/m.wasm", {"Accept-Encoding": "gzip"})
    assert "content-encoding" not in headers  # wasm shards are already dense; Range must keep working


@pytest.mark.parametrize(
    "path",
    [
        "/models/../secret.txt",
        "/models/m/../../secret.txt",
        "/models/%2e%2e/secret.txt",
        "/models/%2E%2E%2Fsecret.txt",
        "/models/..%2fsecret.txt",
        "/models/%252e%252e/secret.txt",
        "/models//etc/passwd",
        "/models/m/..\\..\\secret.txt",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "//etc/passwd",
    ],
)
def test_path_traversal_refused(server, path: str) -> None:  # type: ignore[no-untyped-def]
    status, _, body = get(server, path)
    assert status in (400, 404), (path, status)
    assert b"do not serve" not in body and b"root:" not in body


def test_app_shell_and_missing_files(server) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = get(server, "/")
    assert status == 200 and b"<title>demo</title>" in body
    status, _, body = get(server, "/docs/page")  # a client-side route
    assert status == 200 and b"<title>demo</title>" in body
    status, _, _ = get(server, "/missing.js")
    assert status == 404


# -- issue 19: symlinks, broken packages, unfinished builds ---------------------------------------


def _start_server(app) -> tuple[uvicorn.Server, threading.Thread, int]:  # type: ignore[no-untyped-def]
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    return srv, thread, port


def _run_node_against(app, args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, list[str], int]:  # type: ignore[no-untyped-def]
    """Serve `app` on a free port, run `node *args <port-dependent args>` from sdk/ and return the process
    its stdout lines and the port. `args` may contain "{port}", replaced by the port."""
    srv, thread, port = _start_server(app)
    try:
        argv = ["node", *(a.replace("{port}", str(port)) for a in args)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO / "sdk")
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
    return proc, proc.stdout.strip().splitlines(), port


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """A dist/ and app/ full of what an outside probe tried: symlinks out of the roots (a folder's
    index.html, a folder, the app shell itself), symlink loops, a broken manifest, a hidden
    `.<quant>.tmp-*` build folder holding a manifest, and one good package beside them."""
    root = tmp_path_factory.mktemp("hostile")
    dist, app_dir = root / "dist", root / "app"
    secret = root / "secret.txt"
    secret.write_text("do not serve")
    good = dist / "good" / "q4f32_1"
    good.mkdir(parents=True)
    (good / "mlc-chat-config.json").write_text("{}")
    write_manifest(good, {"model_id": "good", "quantization": "q4f32_1", "model_task": "chat"})
    (dist / "evil").mkdir()
    (dist / "evil" / "index.html").symlink_to(secret)  # the folder's index page links out
    (dist / "outdir").symlink_to(root)  # a folder linking out
    (dist / "loop").symlink_to(dist / "loop")  # a symlink loop
    (dist / "good" / "self").symlink_to(dist / "good" / "self")
    broken = dist / "zz" / "q"
    broken.mkdir(parents=True)
    (broken / "hearth-manifest.json").write_text('{"files": [')
    (broken / "file.json").write_text("{}")
    hidden = dist / "good" / ".q4f16_1.tmp-1-abc"
    hidden.mkdir()
    (hidden / "x.json").write_text("{}")
    write_manifest(hidden, {"model_id": "ghost", "quantization": "q4f16_1", "model_task": "chat"})
    (dist / "linked" / "q").mkdir(parents=True)  # a package folder that links outside dist/
    outside_pkg = root / "outside_pkg"
    outside_pkg.mkdir()
    write_manifest(outside_pkg, {"model_id": "linked", "quantization": "q"})
    (dist / "linked" / "q").rmdir()
    (dist / "linked" / "q").symlink_to(outside_pkg)
    app_dir.mkdir()
    (app_dir / "index.html").symlink_to(secret)  # the SPA shell itself links out
    (app_dir / "sub").mkdir()
    (app_dir / "sub" / "index.html").symlink_to(secret)
    (app_dir / "app.js").write_text("ok")
    srv, thread, port = _start_server(create_app(dist, app_dir, native_api=True))
    yield "127.0.0.1", port, dist
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    "path",
    [
        "/models/evil/",
        "/models/evil/index.html",
        "/models/evil",
        "/models/outdir/secret.txt",
        "/models/outdir/",
        "/models/linked/q/hearth-manifest.json",
        "/",
        "/index.html",
        "/a/client/route",
        "/sub/",
        "/sub",
    ],
)
def test_symlinks_out_of_the_roots_are_refused(hostile, path: str) -> None:  # type: ignore[no-untyped-def]
    status, _, body = get(hostile, path)
    assert status in (400, 404), (path, status, body[:80])
    assert b"do not serve" not in body


@pytest.mark.parametrize(
    "path", ["/models/loop/", "/models/loop/x.json", "/models/good/self/", "/models/good/self/a.bin"]
)
def test_symlink_loops_are_not_found(hostile, path: str) -> None:  # type: ignore[no-untyped-def]
    status, _, _ = get(hostile, path)
    assert status == 404, (path, status)


def test_broken_manifest_is_skipped_and_others_unaffected(hostile, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("WARNING", logger="hearth.serve")
    from hearth.serve import catalog

    catalog._report = catalog._ReportOnce()  # this test wants to see the line, whichever test listed first
    status, _, body = get(hostile, "/models/")
    assert status == 200
    assert [e["url"] for e in json.loads(body)] == ["/models/good/q4f32_1/"]  # no broken, hidden or outside one
    assert any("zz/q" in r.getMessage() and "not valid JSON" in r.getMessage() for r in caplog.records)
    status, _, body = get(hostile, "/healthz")
    health = json.loads(body)
    assert status == 200 and health["packages"] == 1
    assert {b["path"] for b in health["broken_packages"]} == {"zz/q", "linked/q", "outdir/outside_pkg"}
    status, _, body = get(hostile, "/v1/models")
    assert status == 200 and json.loads(body)["data"] == []  # no llvm builds here; no 500 either
    status, _, _ = get(hostile, "/models/good/q4f32_1/mlc-chat-config.json")
    assert status == 200
    status, headers, body = get(hostile, "/models/zz/q/file.json")
    assert status == 200 and body == b"{}"  # served as a plain file: the broken manifest vouches for nothing
    status, _, body = get(hostile, "/v1/chat/completions", method="GET")
    assert status != 500


def test_hidden_build_folders_are_never_listed_or_served(hostile) -> None:  # type: ignore[no-untyped-def]
    status, _, body = get(hostile, "/models/")
    assert "ghost" not in body.decode() and ".tmp-" not in body.decode()
    for path in ("/models/good/.q4f16_1.tmp-1-abc/hearth-manifest.json", "/models/good/.q4f16_1.tmp-1-abc/x.json"):
        status, _, _ = get(hostile, path)
        assert status == 404, path
