"""Issue 19: the corrupted-package matrix, the same 20 corruptions against both loaders, counted.

Each corruption is applied to its own copy of a real package (dist/tiny-llama-trained/q4f32_1, built by
scripts/build_packages.py with webgpu, wasm-cpu and llvm libraries). Then:

- the SDK loads every copy from `hearth serve` over HTTP, as a page does (DecoderModel, webgpu build,
  Dawn on lavapipe, nothing cached: tests/support/sdk_load_matrix.mjs), and runs a few greedy tokens;
- the native loader (`hearth.native.load_decoder`, the llvm build) loads the same folders and runs
  the same greedy tokens.

An outcome is `refused` (an error), `same` (it loaded and the tokens equal the untouched package's) or
`wrong` (it loaded and the tokens differ: a corruption went unnoticed). Every corruption damages
something a load needs, so both loaders must refuse all 20; the untouched package must load on both
(a matrix that refuses everything proves nothing). Twelve corruptions leave the manifest lying (it no
longer vouches for the files); eight make it vouch for the damage (rewritten hashes, paths out of the
package, links out), so only the loaders' other checks (paths, links, shapes, sizes) can catch them.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
from hearth.cache import sha256_file
from hearth.serve.app import create_app
from hearth.weights.manifest import MANIFEST
from test_serve import _run_node_against

sys.path.insert(0, str(REPO / "scripts"))
from build_packages import ensure_package  # noqa: E402

PACKAGE = ("tiny-llama-trained", "q4f32_1")
SHARD = "params_shard_0.bin"
CACHE = "tensor-cache.json"
PROMPT = [(i * 37 + 5) % 1000 for i in range(16)]
N_TOKENS = 6
SCRIPT = REPO / "tests" / "support" / "sdk_load_matrix.mjs"


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()  # a new file: never write through to whatever the old name pointed at
    path.write_bytes(data)


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    _rewrite(path, bytes(data))


def _doc(pkg: Path) -> dict:
    return json.loads((pkg / MANIFEST).read_text())


def _save(pkg: Path, doc: dict) -> None:
    _rewrite(pkg / MANIFEST, json.dumps(doc, indent=2).encode())


def _edit_entries(pkg: Path, edit: Callable[[list[dict]], list[dict]]) -> None:
    doc = _doc(pkg)
    doc["files"] = edit(doc["files"])
    _save(pkg, doc)


def _rehash(pkg: Path) -> None:
    """Make the manifest vouch for the files as they are now (sizes and SHA-256 of what is listed)."""
    doc = _doc(pkg)
    for e in doc["files"]:
        f = pkg / e["path"]
        if f.is_file():
            e["bytes"], e["sha256"] = f.stat().st_size, sha256_file(f)
    _save(pkg, doc)


def _edit_cache(pkg: Path, edit: Callable[[dict], None]) -> None:  # rewrites the whole file
    cache = json.loads((pkg / CACHE).read_text())
    edit(cache)
    _rewrite(pkg / CACHE, json.dumps(cache).encode())


def _libraries(pkg: Path) -> list[str]:
    return sorted(set(_doc(pkg)["targets"].values()))


def _outside(pkg: Path) -> Path:
    """A folder beside dist/: outside the package and outside what `hearth serve` serves."""
    out = pkg.parents[2] / "outside" / pkg.name
    out.mkdir(parents=True, exist_ok=True)
    return out


# -- the 20 corruptions ---------------------------------------------------------------------------
# The manifest lies: it no longer matches the files.


def flip_shard_byte(pkg: Path) -> None:
    _flip(pkg / SHARD, 1000)


def truncate_shard(pkg: Path) -> None:
    _rewrite(pkg / SHARD, (pkg / SHARD).read_bytes()[: (pkg / SHARD).stat().st_size // 2])


def delete_shard(pkg: Path) -> None:
    (pkg / SHARD).unlink()


def unlist_and_flip_shard(pkg: Path) -> None:
    _edit_entries(pkg, lambda files: [e for e in files if e["path"] != SHARD])
    _flip(pkg / SHARD, 1000)


def empty_file_list(pkg: Path) -> None:
    _edit_entries(pkg, lambda files: [])


def flip_every_library(pkg: Path) -> None:
    for lib in _libraries(pkg):
        size = (pkg / lib).stat().st_size
        _flip(pkg / lib, size // 2)


def _replace(path: Path, old: bytes, new: bytes) -> None:
    """A same-size edit (so only the SHA-256, not the size, can give it away)."""
    assert len(old) == len(new)
    data = path.read_bytes()
    assert old in data, (path.name, old)
    _rewrite(path, data.replace(old, new, 1))


def edit_tensor_cache(pkg: Path) -> None:
    _replace(pkg / CACHE, b"2048,", b"1024,")  # the first weight's shape halved


def edit_tokenizer(pkg: Path) -> None:
    _replace(pkg / "tokenizer.json", b'"nt": 300', b'"nt": 301')
    _replace(pkg / "tokenizer.json", b'"er": 301', b'"er": 300')


def edit_chat_config(pkg: Path) -> None:
    _replace(pkg / "mlc-chat-config.json", b'"context_window_size": 256', b'"context_window_size": 128')


def manifest_not_json(pkg: Path) -> None:
    _rewrite(pkg / MANIFEST, b'{"files": [')


def manifest_missing(pkg: Path) -> None:
    (pkg / MANIFEST).unlink()


def manifest_bad_sha(pkg: Path) -> None:
    _edit_entries(pkg, lambda files: [{**e, "sha256": "zz"} if e["path"] == SHARD else e for e in files])


# The manifest is rewritten to vouch for the damage: only the loaders' own checks can refuse it.


def entry_outside_package(pkg: Path) -> None:
    """The shard moved out of the package, listed (with its true hash) as ../<name> and the tensor
    cache pointing there (issue 19 item 7's `../outside.bin`)."""
    moved = f"{pkg.name}-{SHARD}"
    shutil.move(pkg / SHARD, pkg.parent / moved)
    _edit_entries(pkg, lambda files: [{**e, "path": f"../{moved}"} if e["path"] == SHARD else e for e in files])
    _edit_cache(pkg, lambda c: c["records"][0].update(dataPath=f"../{moved}"))
    _rehash(pkg)


def entry_absolute_path(pkg: Path) -> None:
    _edit_entries(
        pkg, lambda files: [{**e, "path": str(pkg.resolve() / SHARD)} if e["path"] == SHARD else e for e in files]
    )
    _edit_cache(pkg, lambda c: c["records"][0].update(dataPath=str(pkg.resolve() / SHARD)))
    _rehash(pkg)


def shard_symlink_outside(pkg: Path) -> None:
    """The shard replaced by a link to an identical copy outside: every listed hash still matches."""
    outside = _outside(pkg) / SHARD
    shutil.move(pkg / SHARD, outside)
    (pkg / SHARD).symlink_to(outside)


def library_symlink_outside(pkg: Path) -> None:
    for lib in _libraries(pkg):
        outside = _outside(pkg) / lib
        shutil.move(pkg / lib, outside)
        (pkg / lib).symlink_to(outside)


def rehashed_truncated_shard(pkg: Path) -> None:
    _rewrite(pkg / SHARD, (pkg / SHARD).read_bytes()[: (pkg / SHARD).stat().st_size // 2])
    _rehash(pkg)


def rehashed_shape_change(pkg: Path) -> None:
    edit_tensor_cache(pkg)
    _rehash(pkg)


def rehashed_dtype_change(pkg: Path) -> None:
    """A float32 weight relabelled float16: it claims half the bytes it holds."""
    _replace(pkg / CACHE, b'"dtype": "float32"', b'"dtype": "float16"')
    _rehash(pkg)


def rehashed_target_outside(pkg: Path) -> None:
    doc = _doc(pkg)
    outside = _outside(pkg)
    for target, lib in doc["targets"].items():
        shutil.copy(pkg / lib, outside / lib)
        doc["targets"][target] = f"../../../outside/{pkg.name}/{lib}"
    _save(pkg, doc)


CORRUPTIONS: list[Callable[[Path], None]] = [
    flip_shard_byte,
    truncate_shard,
    delete_shard,
    unlist_and_flip_shard,
    empty_file_list,
    flip_every_library,
    edit_tensor_cache,
    edit_tokenizer,
    edit_chat_config,
    manifest_not_json,
    manifest_missing,
    manifest_bad_sha,
    entry_outside_package,
    entry_absolute_path,
    shard_symlink_outside,
    library_symlink_outside,
    rehashed_truncated_shard,
    rehashed_shape_change,
    rehashed_dtype_change,
    rehashed_target_outside,
]
assert len(CORRUPTIONS) == 20


@dataclass
class Outcome:
    kind: str  # refused | same | wrong
    detail: str


def _classify(ok: bool, tokens: list[int] | None, reference: list[int], error: str) -> Outcome:
    if not ok:
        return Outcome("refused", error)
    return Outcome("same" if tokens == reference else "wrong", f"tokens {tokens}")


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path]]]:
    """dist/c/<case>/ for every corruption, plus dist/c/pristine/ (an untouched copy)."""
    source = ensure_package(*PACKAGE)
    root = tmp_path_factory.mktemp("corrupt")
    dist = root / "dist"
    folders: dict[str, Path] = {}
    for case in ["pristine", *(c.__name__ for c in CORRUPTIONS)]:
        pkg = dist / "c" / case
        shutil.copytree(source, pkg)
        folders[case] = pkg
    for corrupt in CORRUPTIONS:
        corrupt(folders[corrupt.__name__])
    yield dist, folders


def _native(pkg: Path) -> tuple[bool, list[int] | None, str]:
    from hearth.native import load_decoder

    try:
        decoder, _ = load_decoder(pkg)
        return True, list(decoder.greedy(PROMPT, N_TOKENS)), ""
    except Exception as e:  # noqa: BLE001 - any refusal counts; its type and message are reported
        return False, None, f"{type(e).__name__}: {e}"


def _sdk(dist: Path, cases: list[str]) -> dict[str, dict]:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH (make setup)")
    urls = [f"http://127.0.0.1:{{port}}/models/c/{case}/" for case in cases]
    args = ["--import", "tsx", str(SCRIPT), ",".join(map(str, PROMPT)), str(N_TOKENS), *urls]
    proc, lines, _ = _run_node_against(create_app(dist, None), args, timeout=900)
    assert proc.returncode == 0 and lines, (
        f"sdk_load_matrix failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    )
    results = json.loads(lines[-1])["results"]
    return {case: r for case, r in zip(cases, results, strict=True)}


def test_corrupted_package_matrix_sdk_and_native(matrix, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    dist, folders = matrix
    cases = [c.__name__ for c in CORRUPTIONS]
    sdk = _sdk(dist, ["pristine", *cases])
    native = {case: _native(folders[case]) for case in ["pristine", *cases]}

    ok, ref_native, err = native["pristine"]
    assert ok and ref_native, f"the untouched package must load natively: {err}"
    assert sdk["pristine"]["ok"], f"the untouched package must load in the SDK: {sdk['pristine']}"
    ref_sdk = sdk["pristine"]["tokens"]

    table: list[tuple[str, Outcome, Outcome]] = []
    for case in cases:
        s = sdk[case]
        sdk_outcome = _classify(s["ok"], s.get("tokens"), ref_sdk, f"{s.get('name')}: {s.get('error')}")
        n_ok, n_tokens, n_err = native[case]
        table.append((case, sdk_outcome, _classify(n_ok, n_tokens, ref_native, n_err)))
    counted = table
    sdk_refused = sum(1 for _, s, _ in counted if s.kind == "refused")
    native_refused = sum(1 for _, _, n in counted if n.kind == "refused")
    with capsys.disabled():
        name = "/".join(PACKAGE)
        print(f"\ncorrupted-package matrix ({name}): SDK refused {sdk_refused}/20, native refused {native_refused}/20")
        for case, s, n in table:
            print(f"  {case:26s} SDK {s.kind:7s} {s.detail[:110]}")
            print(f"  {'':26s} native {n.kind:7s} {n.detail[:110]}")
    assert [c for c, s, _ in table if s.kind == "wrong"] == [], "the SDK ran a corrupted package without noticing"
    assert [c for c, _, n in table if n.kind == "wrong"] == [], (
        "the native loader ran a corrupted package without noticing"
    )
    assert (sdk_refused, native_refused) == (20, 20), [(c, s.kind, n.kind) for c, s, n in counted]
    # A refusal must say what is wrong: Hearth's own errors name the file and what to do; a bare
    # AssertionError from TVM's loader or a numpy reshape error names neither.
    unnamed = [
        (c, n.detail[:80]) for c, _, n in counted if not n.detail.startswith(("IntegrityError", "PackageTargetError"))
    ]
    assert unnamed == [], unnamed
    sdk_named = ("IntegrityError", "PackageManifestError", "PackageCompatibilityError", "DownloadError")
    assert [(c, s.detail[:80]) for c, s, _ in counted if not s.detail.startswith(sdk_named)] == []
