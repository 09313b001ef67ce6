"""build/fusion.py's "staged" mode (build/staged_gemv.py): RMSNorm folded into the GEMV after it, the SwiGLU
gate and the residual add into the down projection, each prologue computed once per workgroup into shared
memory (issue 17, item 1; opt-in, `fuse="staged"`, until the GPU A/B).

Structure on the Relax of tiny-llama-trained q4f32_1 for WebGPU (seconds), then the real thing on Dawn
(lavapipe), for tiny-llama-trained and tiny-qwen2-bpe (a bias epilogue in its qkv GEMV) q4f32_1: the
package rebuilt by bench/gpu/build_unfused.py --fused2 against the default (unfused) package: the same
greedy tokens, the top logits equal up to the reduction order, and 3 launches fewer per layer plus one
(the final norm) per decode token, counted by sdk/scripts/kernel-launches.mjs. SmolLM2-135M and the
Qwen2.5-0.5B shape were checked the same way by hand (docs/benchmarks.md): too slow to build for CI.
The prefetch variant (mode staged-p, build_unfused.py --fused2 --prefetch) against the staged build: the
same tokens and logits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import tvm
from tvm.relax.backend.gpu_generic import pipeline as gpu_generic

from conftest import REPO, call_tir_kernels
from hearth.build import staged_gemv
from hearth.build.fusion import fusion_passes
from hearth.cache import cache_root
from hearth.models import get_architecture
from hearth.quant import get_scheme, quantize_model
from hearth.targets import get_target
from hearth.tasks import get_task
from hearth.weights.source import resolve_source

sys.path.insert(0, str(REPO / "scripts"))
import build_packages  # noqa: E402
import make_test_models as mtm  # noqa: E402

MODEL, QUANT = "tiny-llama-trained", "q4f32_1"
# Two layer shapes on Dawn: llama (no biases) and qwen2 (a bias epilogue in the qkv GEMV, its own lm_head);
# and llama with at most CHUNK_BYTES staged at once, so that its down projection (K = 352 floats, 1408
# bytes) is staged in two chunks (256 + 96 elements, the second predicated), as Qwen2.5-0.5B's (K = 4864,
# 19 KiB in float32) is under the default limit. (model, staged bytes or None for the default)
CHUNK_BYTES = 1024
WEBGPU_CASES = [("tiny-llama-trained", None), ("tiny-qwen2-bpe", None), ("tiny-llama-trained", CHUNK_BYTES)]


@functools.cache
def _exported(quant: str = QUANT) -> tuple[tvm.ir.IRModule, int]:
    source = resolve_source(str(mtm.ensure_test_model(MODEL)))
    arch = get_architecture(source.config["model_type"])
    task = get_task(arch.task)
    config, _ = task.configure(
        arch, source, context_window_size=None, prefill_chunk_size=None, embed_batch_sizes=None, embed_seq_lens=None
    )
    target = get_target("webgpu").target()
    scheme = get_scheme(quant)
    module = quantize_model(arch.model_class(config, dtype=scheme.model_dtype, target=target), scheme)
    mod, _ = task.export(module, target)
    return mod, config.num_hidden_layers


@functools.cache
def _legalized(staged: bool, quant: str = QUANT, mode: str = "staged") -> tvm.ir.IRModule:
    mod, _ = _exported(quant)
    target = get_target("webgpu").target()
    with target:
        passes = gpu_generic.library_dispatch_passes(target)
        passes += fusion_passes(target, mode) if staged else []
        passes += gpu_generic.legalize_passes(target)
        return tvm.transform.Sequential(passes)(mod)


def test_decode_norms_and_gate_fold_into_gemvs() -> None:
    _, layers = _exported()
    before, after = call_tir_kernels(_legalized(False), "decode"), call_tir_kernels(_legalized(True), "decode")
    assert not [k for k in after if k.startswith("rms_norm") or ("silu" in k)], after
    staged = Counter({k: v for k, v in after.items() if k.startswith("hearth_")})
    # per layer: norm+qkv, norm+gate_up, gate+down+residual; once: the final norm + lm_head
    assert sum(staged.values()) == 3 * layers + 1, after
    assert sum(1 for k in staged if k.startswith("hearth_swiglu_add_")) == 1, after
    assert sum(after.values()) == sum(before.values()) - 3 * layers - 1


def test_staged_kernels_are_scheduled_with_shared_staging() -> None:
    mod = _legalized(True)
    names = [gv.name_hint for gv in mod.get_global_vars() if gv.name_hint.startswith("hearth_")]
    assert names
    for name in names:
        script = mod[name].script()
        # scheduled here (dlight leaves it alone), the input staged in shared memory, a cross-thread reduction
        assert "tirx.is_scheduled" in script and 'scope="shared"' in script, name
        assert 'thread="threadIdx.x"' in script and 'thread="blockIdx.x"' in script, name


def test_chunk_sizes() -> None:
    """Chunks are whole reduction steps (TR x VEC = 256 elements), as few as fit, the last one shorter."""
    assert staged_gemv.chunk_elems(4864, "float32") == 2560  # Qwen2.5-0.5B's down projection: 2560 + 2304
    assert staged_gemv.chunk_elems(4864, "float16") == 4864  # 9.5 KiB: not chunked
    assert staged_gemv.chunk_elems(1536, "float32") == 1536  # SmolLM2's: 6 KiB, not chunked
    assert staged_gemv.chunk_elems(352, "float32", CHUNK_BYTES) == 256
    assert staged_gemv.chunk_elems(8192, "float32") == 2816  # 3 chunks, 11 KiB each
    with pytest.raises(staged_gemv.Unsupported, match="hold no chunk"):
        staged_gemv.chunk_elems(352, "float32", 512)


def test_small_staging_limit_chunks_the_down_projection() -> None:
    """With CHUNK_BYTES the down projection (K = 352) still folds, staged 256 elements at a time inside a
    loop over 2 chunks; the norms (K = 128) stay whole."""
    mod = _legalized(True, QUANT, f"staged-b{CHUNK_BYTES}")
    _, layers = _exported()
    after = call_tir_kernels(mod, "decode")
    assert sum(v for k, v in after.items() if k.startswith("hearth_")) == 3 * layers + 1, after
    for gv in mod.get_global_vars():
        name = gv.name_hint
        if not name.startswith("hearth_"):
            continue
        script = mod[name].script()
        # (the staged buffer is compacted to one chunk when lowered: test_fusion_f16 checks the WGSL)
        assert ("for k_0 in range(2):" in script) == name.startswith("hearth_swiglu"), (name, script)


@pytest.mark.parametrize("func", ["prefill", "batch_prefill", "batch_decode"])
def test_other_shapes_keep_their_kernels(func: str) -> None:
    assert call_tir_kernels(_legalized(True), func) == call_tir_kernels(_legalized(False), func)


def test_unknown_kernel_form_is_left_unfused() -> None:
    """A PrimFunc that is not [dequantize, NT_matmul, ...] (here the rms_norm kernel) is not rebuilt."""
    mod = _legalized(False)
    names = [gv.name_hint for gv in mod.get_global_vars() if gv.name_hint.startswith("rms_norm")]
    assert names
    for name in names:
        assert staged_gemv.rebuild_or_none(mod[name], "rms_norm", False, 1e-6) is None


@pytest.mark.parametrize(
    "mode",
    [
        "nope",
        "staged-r9",
        "staged-r0",
        "staged-rx",
        "staged-b0",
        "staged-b99999",
        "staged-bx",
        "staged-p-r2",
        "staged-px",
    ],
)
def test_unknown_mode_is_an_error(mode: str) -> None:
    with pytest.raises(ValueError, match=f"unknown fusion mode '{mode}'"):
        fusion_passes(get_target("webgpu").target(), mode)


def test_rows_per_workgroup_is_a_mode() -> None:
    """staged-r2: the same kernels with 2 output rows (threadIdx.y) per workgroup instead of 8."""
    mod, _ = _exported()
    target = get_target("webgpu").target()
    with target:
        passes = gpu_generic.library_dispatch_passes(target) + fusion_passes(target, "staged-r2")
        out = tvm.transform.Sequential(passes)(mod)
    names = [gv.name_hint for gv in out.get_global_vars() if gv.name_hint.startswith("hearth_")]
    assert len(names) == 4, names
    for name in names:
        script = out[name].script()
        assert 'T.thread_binding(2, thread="threadIdx.y")' in script and "thread_binding(8, thread" not in script


def test_prefetch_is_a_mode() -> None:
    """staged-p (and staged-r2-b1024-p): the same kernels, each thread's packed words and scales loaded into
    registers (hearth_prefetch* local buffers of its own steps) before the prologue."""
    for mode in ("staged-p", f"staged-r2-b{CHUNK_BYTES}-p"):
        mod = _legalized(True, QUANT, mode)
        names = [gv.name_hint for gv in mod.get_global_vars() if gv.name_hint.startswith("hearth_")]
        assert len(names) == 4, (mode, names)
        for name in names:
            script = mod[name].script()
            # the packed words and the scales of q4f32_1, each a per-thread register tensor
            assert script.count('sblock("hearth_prefetch') == 2, (mode, name, script)
            assert script.index('sblock("hearth_prefetch') < script.index('sblock("hearth_staged")'), (mode, name)
    plain = _legalized(True)
    assert not [gv for gv in plain.get_global_vars() if 'sblock("hearth_prefetch' in plain[gv].script()]


# --- on Dawn (lavapipe) --------------------------------------------------------------------------------


def _node(script: str, *args: str) -> dict:
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", "--import", "tsx", script, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO / "sdk")
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(lines[-1])


def _greedy_pair(first: Path, second: Path) -> tuple[dict, dict]:
    """generate.mjs on two builds of one model with the same 32-token prompt: 24 greedy tokens, top-5 logits
    at every step."""
    vocab = json.loads((first / "mlc-chat-config.json").read_text())["vocab_size"]
    prompt = ",".join(str((i * 7919 + 13) % vocab) for i in range(32))
    args = ("--ids", prompt, "--max-new", "24", "--trace", "5")
    return _node("scripts/generate.mjs", str(first), *args), _node("scripts/generate.mjs", str(second), *args)


def _key(*files: Path) -> str:
    key = hashlib.sha256()
    for f in files:
        key.update(f.read_bytes())
    return key.hexdigest()[:16]


def _base_package(model: str) -> Path:
    """The default (unfused) q4f32_1 WebGPU package: the test package where there is one, else compiled here."""
    if model == MODEL:
        return build_packages.ensure_package(model, QUANT)
    ckpt = mtm.ensure_test_model(model)
    out = cache_root() / "test-packages" / "fused2-base" / _key(REPO / "compile" / "hearth" / "build" / "pipeline.py")
    pkg = out / model / QUANT
    if not (pkg / "hearth-manifest.json").is_file():
        cmd = [str(REPO / ".venv" / "bin" / "hearth"), "compile", str(ckpt), "--quant", QUANT, "--target", "webgpu"]
        cmd += ["--out", str(out), "--model-id", model]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return pkg


@functools.cache
def _packages(
    model: str, staged_bytes: int | None = None, prefetch: bool = False, multirow: int | None = None
) -> tuple[Path, Path]:
    """(default package, its --fused2 [--prefetch [--multirow R]] rebuild); the rebuild is cached by the
    package and the compiler files."""
    base = _base_package(model)
    build = REPO / "compile" / "hearth" / "build"
    key = _key(base / "hearth-manifest.json", build / "fusion.py", build / "staged_gemv.py", build / "pipeline.py")
    out = cache_root() / "test-packages" / "fused2" / (key + ("" if staged_bytes is None else f"-b{staged_bytes}"))
    out = out.with_name(out.name + ("-p" if prefetch else "") + ("" if multirow is None else f"-m{multirow}"))
    pkg = out / model / QUANT
    if not (pkg / "hearth-manifest.json").is_file():
        cmd = [sys.executable, str(REPO / "bench" / "gpu" / "build_unfused.py")]
        cmd += [str(mtm.ensure_test_model(model)), str(base), "--fused2", "--out", str(out)]
        cmd += [] if staged_bytes is None else ["--staged-bytes", str(staged_bytes)]
        cmd += ["--prefetch"] if prefetch else []
        cmd += [] if multirow is None else ["--multirow", str(multirow)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
        if proc.returncode != 0:  # the copy holds the default library: no later test may take it as the rebuild
            shutil.rmtree(pkg, ignore_errors=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return base, pkg


@pytest.mark.parametrize(("model", "staged_bytes"), WEBGPU_CASES)
def test_webgpu_fused2_fewer_launches_same_tokens(model: str, staged_bytes: int | None) -> None:
    base, fused = _packages(model, staged_bytes)
    layers = json.loads((base / "mlc-chat-config.json").read_text())["model_config"]["num_hidden_layers"]
    args = ("--steps", "2", "--prompt", "8")
    a = _node("scripts/kernel-launches.mjs", str(base), *args)
    b = _node("scripts/kernel-launches.mjs", str(fused), *args)
    assert b["total"] == a["total"] - 3 * layers - 1, (a["byKernel"], b["byKernel"])
    assert not [k for k in b["byKernel"] if k.startswith("rms_norm")], b["byKernel"]
    assert a["tokens"] == b["tokens"]


@pytest.mark.parametrize(("model", "staged_bytes"), WEBGPU_CASES)
def test_webgpu_fused2_logits_match_unfused(model: str, staged_bytes: int | None) -> None:
    """Greedy over 24 tokens with the top-5 logits at every position: same tokens, logits equal up to the
    changed reduction order (sum of squares and GEMV partial sums are added in another order)."""
    base, fused = _packages(model, staged_bytes)
    a, b = _greedy_pair(base, fused)
    assert a["tokens"] == b["tokens"]
    worst = 0.0
    for sa, sb in zip(a["steps"], b["steps"], strict=True):
        assert [t for t, _ in sa["top"]][:2] == [t for t, _ in sb["top"]][:2] or sa["margin"] < 1e-3
        for (ta, la), (tb, lb) in zip(sa["top"], sb["top"], strict=True):
            if ta == tb:
                worst = max(worst, abs(la - lb) / max(1.0, abs(la)))
    assert worst < 1e-4, worst


def test_webgpu_prefetch_same_tokens_and_logits_as_staged() -> None:
    """--fused2 --prefetch against --fused2 (tiny-llama, lavapipe): the same multiply-adds in the same order
    from registers instead of memory, so the same greedy tokens and bit-identical top-5 logits, and the
    same launches."""
    _, staged = _packages(MODEL)
    _, prefetched = _packages(MODEL, None, True)
    a, b = _greedy_pair(staged, prefetched)
    assert a["tokens"] == b["tokens"]
    assert [s["top"] for s in a["steps"]] == [s["top"] for s in b["steps"]]
    launches = [r["stats"]["dispatch"]["launchesByKernel"] for r in (a, b)]
    assert launches[0] == launches[1]
