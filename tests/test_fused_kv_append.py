"""The fused KV append (issue 17): on targets linked with Hearth's wasm runtime the KV cache's split +
RoPE kernel also appends k/v to the pages (hearth/models/split_rotary_append.py, runtime patch "fused
KV append" in hearth/runtime/source_patches.py), one launch per layer less in every decode step.

- the kernel, natively: q, k, v and the pages bit-equal to upstream's two kernels (rotations with
  rope_scaling variants and partial rotary, apply_rope 0, positions -1, append 0);
- the runtime patch: applied once, and a wheel whose text changed stops the build naming it;
- the swap: the 9-argument kernel under upstream's symbol for webgpu / wasm-cpu, upstream's on llvm;
- a small llama package, multi-chunk prefill then decode: WebGPU and wasm-cpu greedy tokens equal to
  the native (unpatched runtime, upstream kernels) build's, logits within the family tolerance, and
  a decode step on WebGPU launches no `kv_cache_transpose_append` and one split kernel per layer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm.relax.frontend.nn.llm._page_kernels import _kv_cache_transpose_append
from tvm.relax.frontend.nn.llm.position_embedding import llama_rope_with_position_map

import family_parity as fp
from conftest import REPO, run_json
from hearth.models import config_from_hf
from hearth.models.decoder import export_model
from hearth.models.split_rotary_append import (
    PAGE_SIZE,
    SPLIT_ROTARY_SYMBOL,
    links_wasm_runtime,
    split_rotary_append,
)
from hearth.runtime.build import _package_dir
from hearth.runtime.source_patches import PATCHES, SourcePatchError, apply_patches
from hearth.targets import get_target

LAYERS = 2
LLAMA = dict(num_hidden_layers=LAYERS, head_dim=64, num_key_value_heads=1)
LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}


def _native(func: tvm.tirx.PrimFunc) -> tvm.runtime.Module:
    return tvm.compile(tvm.IRModule({"main": func}), target=get_target("llvm").target())


@pytest.mark.parametrize(
    ("rope_scaling", "head_dim", "rotary_dim", "apply_rope", "dtype"),
    [
        ({}, 64, 64, 1, "float32"),
        (LLAMA3, 64, 32, 1, "float32"),  # llama3 frequencies, partial rotary
        ({}, 32, 32, 1, "float16"),
        ({}, 64, 64, 0, "float32"),  # RopeMode.NONE / INLINE: a plain split
    ],
)
def test_kernel_bit_equal_to_upstream(
    rope_scaling: dict, head_dim: int, rotary_dim: int, apply_rope: int, dtype: str
) -> None:
    hq, hkv, n, pages_n = 6, 2, 21, 4
    theta = 10000.0
    upstream_split = _native(llama_rope_with_position_map(theta, 1, head_dim, hq, hkv, dtype, rope_scaling, rotary_dim))
    upstream_append = _native(_kv_cache_transpose_append(hkv, head_dim, dtype))
    fused = _native(
        split_rotary_append(theta, 1, head_dim, hq, hkv, dtype, rope_scaling, rotary_dim, get_target("llvm").target())
    )
    rng = np.random.default_rng(0)
    qkv = rng.standard_normal((n, hq + 2 * hkv, head_dim)).astype(dtype)
    rope_pos = rng.integers(0, 300, n).astype("int32")
    append_pos = rng.permutation(pages_n * PAGE_SIZE)[:n].astype("int32")
    append_pos[[3, 10]] = -1  # attention sinks: not appended
    pages0 = rng.standard_normal((pages_n, 2, hkv, PAGE_SIZE, head_dim)).astype(dtype)
    dev = tvm.cpu()

    def run(append: int | None) -> list[np.ndarray]:
        outs = [np.zeros((n, h, head_dim), dtype) for h in (hq, hkv, hkv)]
        t = [tvm.runtime.tensor(a, dev) for a in (qkv, rope_pos, *outs, pages0, append_pos)]
        if append is None:  # upstream: split, then append
            upstream_split(t[0], t[1], t[2], t[3], t[4], apply_rope)
            upstream_append(t[5], t[3], t[4], t[6])
        else:
            fused(t[0], t[1], t[2], t[3], t[4], apply_rope, t[5], t[6], append)
        return [x.numpy() for x in t[2:6]]

    ref = run(None)
    got = run(1)
    for name, a, b in zip(("q", "k", "v", "pages"), got, ref):
        assert np.array_equal(a, b), f"{name} differs from upstream's by up to {np.abs(a - b).max()}"
    assert np.array_equal(run(0)[3], pages0), "append 0 must leave the pages alone"
    assert all(np.array_equal(a, b) for a, b in zip(run(0)[:3], ref[:3]))


def test_longrope_is_refused() -> None:
    longrope = {"rope_type": "longrope", "max_position_embeddings": 256, "original_max_position_embeddings": 64}
    with pytest.raises(ValueError, match="LongRoPE"):
        split_rotary_append(1e4, 1, 64, 4, 2, "float32", longrope, 64, get_target("webgpu").target())


def test_wasm_runtime_targets_are_told_by_triple() -> None:
    assert {
        n: links_wasm_runtime(get_target(n).target()) for n in ("webgpu", "wasm-cpu", "wasm-cpu-mt", "llvm", "cuda")
    } == {
        "webgpu": True,
        "wasm-cpu": True,
        "wasm-cpu-mt": True,
        "llvm": False,
        "cuda": False,
    }


FUSED_PATCH = next(p for p in PATCHES if p.name.startswith("fused KV append"))


def _kv_source_tree(tmp_path: Path) -> Path:
    home = tmp_path / "tvm_home"
    for rel in {p.path for p in PATCHES}:
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_package_dir("tvm") / rel, home / rel)
    return home


def test_runtime_patch_fuses_the_append_only_in_the_plain_rope_branch(tmp_path: Path) -> None:
    home = _kv_source_tree(tmp_path)
    apply_patches(home)
    kv = (home / FUSED_PATCH.path).read_text()
    assert kv.count("pages_[local_layer_id], append_position_map_view_,\n") == 1  # the one 9-argument call
    assert "if (append_before_attn_ && !hearth_appended) {" in kv
    # after attention (prefill chunks, sliding windows) upstream's separate append still runs
    assert kv.count("if (!append_before_attn_) {\n      f_transpose_append_mha_.value()") == 1


def test_runtime_patch_fails_naming_itself_on_changed_source(tmp_path: Path) -> None:
    home = _kv_source_tree(tmp_path)
    path = home / FUSED_PATCH.path
    path.write_text(path.read_text().replace("// Part 3. Append k/v data", "// Part 3. append k/v data"))
    with pytest.raises(SourcePatchError, match="fused KV append"):
        apply_patches(home)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fp.save_checkpoint(tmp_path_factory.mktemp("fkv") / "llama-fkv", "LlamaConfig", LLAMA)


@pytest.mark.parametrize(("target", "params"), [("webgpu", 9), ("wasm-cpu", 9), ("llvm", 6)])
def test_swapped_in_for_wasm_runtime_targets_only(checkpoint: Path, target: str, params: int) -> None:
    """The module's split kernel must match what the runtime linked with it passes: the patched
    wasm runtime 9 arguments, the wheel's native libtvm 6."""
    arch, config = config_from_hf(json.loads((checkpoint / "config.json").read_text()))
    tgt = get_target(target).target()
    model = arch.model_class(config, dtype="float32", target=tgt)
    mod, _ = export_model(model, tgt)
    (gv,) = [gv for gv in mod.get_global_vars() if gv.name_hint == SPLIT_ROTARY_SYMBOL]
    assert len(mod[gv].params) == params


@pytest.fixture(scope="module")
def package(checkpoint: Path) -> Path:
    return fp.package(checkpoint, "q0f32", ["llvm", "webgpu", "wasm-cpu"])[0]


def _trace(pkg: Path, ids: list[int], new_tokens: int, target: str, chunk: int) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", str(fp.GENERATE), str(pkg), "--ids", ",".join(map(str, ids)), "--max-new", str(new_tokens)]
    cmd += ["--trace", "8", "--prefill-chunk", str(chunk), "--target", target]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {"error": "no output"}
    assert proc.returncode == 0 and "error" not in result, f"generate.mjs failed: {result}\n{proc.stderr[-3000:]}"
    return result


@pytest.mark.parametrize("target", ["webgpu", "wasm-cpu"])
def test_chunked_prefill_and_decode_match_native(package: Path, target: str) -> None:
    """40 prompt tokens in chunks of 16 (prefill appends after attention: upstream's separate
    kernel), then 8 decode steps (appended by the fused kernel), each step's top logits against the
    native build's."""
    ids, new = fp.prompt(91, 40), 8
    got = _trace(package, ids, new, target, 16)
    assert got["deviceKind"] == ("webgpu" if target == "webgpu" else "cpu"), got["deviceKind"]
    dec, _ = fp.load_decoder(package, target="llvm")
    dec.prefill_chunk_size = 16
    logits = [dec.prefill(ids).ravel()]
    native = [int(np.argmax(logits[0]))]
    while len(native) < new:
        logits.append(dec.decode(native[-1]).ravel())
        native.append(int(np.argmax(logits[-1])))
    err = max(abs(v - float(logits[step][tok])) for step, s in enumerate(got["steps"]) for tok, v in s["top"])
    print(f"\n{target} vs native: max|dlogit| {err:.3g}")
    assert got["tokens"] == native
    assert err <= fp.LOGIT_TOL


def test_decode_launches_no_separate_append(package: Path) -> None:
    got = run_json(["node", str(REPO / "sdk" / "scripts" / "kernel-launches.mjs"), str(package), "--steps", "4"], 600)
    by_kernel = got["byKernel"]
    assert not [k for k in by_kernel if "transpose_append" in k], by_kernel
    split = [v for k, v in by_kernel.items() if k.startswith(SPLIT_ROTARY_SYMBOL)]
    assert split == [LAYERS], by_kernel
