"""build/fusion.py: the GPU pipeline's decode-step kernel fusion (issue 17, fewer launches per token).

Structure only, on the Relax/TIR of tiny-llama-trained q4f32_1 exported for WebGPU (seconds, no link):
which kernels a decode step calls with and without the fusion passes. The pass is opt-in
(`build_target(..., fuse=True)`): on an H100 it made WebGPU decode 15-23 % slower (docs/benchmarks.md,
"Decode fusion on the H100"), so packages are built without it. While it was the default, the
WebGPU-vs-native greedy tests (tests/test_webgpu_decoder.py, test_quant_gguf.py, test_webgpu_quant.py)
checked that the fused kernel gives the same tokens; launches per token: sdk/scripts/kernel-launches.mjs.
"""

from __future__ import annotations

import functools
import sys

import pytest
import tvm
from tvm import relax
from tvm.relax.backend.gpu_generic import pipeline as gpu_generic

from conftest import REPO, call_tir_kernels
from hearth.build.fusion import fusion_passes
from hearth.models import get_architecture
from hearth.quant import get_scheme, quantize_model
from hearth.targets import get_target
from hearth.tasks import get_task
from hearth.weights.source import resolve_source

sys.path.insert(0, str(REPO / "scripts"))
import make_test_models as mtm  # noqa: E402


@functools.cache
def _exported() -> tuple[tvm.ir.IRModule, int]:
    source = resolve_source(str(mtm.ensure_test_model("tiny-llama-trained")))
    arch = get_architecture(source.config["model_type"])
    task = get_task(arch.task)
    config, _ = task.configure(
        arch, source, context_window_size=None, prefill_chunk_size=None, embed_batch_sizes=None, embed_seq_lens=None
    )
    target = get_target("webgpu").target()
    module = quantize_model(arch.model_class(config, dtype="float32", target=target), get_scheme("q4f32_1"))
    mod, _ = task.export(module, target)
    return mod, config.num_hidden_layers


@functools.cache
def _legalized(fused: bool) -> tvm.ir.IRModule:
    """The module after dispatch, (fusion,) legalization, FuseOps/FuseTIR and dlight: GPU kernels as launched."""
    mod, _ = _exported()
    target = get_target("webgpu").target()
    with target:
        passes = gpu_generic.library_dispatch_passes(target)
        passes += fusion_passes(target) if fused else []
        passes += gpu_generic.legalize_passes(target)
        return tvm.transform.Sequential(passes)(mod)


def test_decode_gate_folds_into_down_projection() -> None:
    _, layers = _exported()
    before, after = call_tir_kernels(_legalized(False), "decode"), call_tir_kernels(_legalized(True), "decode")
    gate_alone = [k for k in before if "silu" in k and "matmul" not in k]
    assert len(gate_alone) == 1 and before[gate_alone[0]] == layers, before
    assert not [k for k in after if "silu" in k and "matmul" not in k], after
    fused = [k for k in after if "silu" in k and "NT_matmul" in k]
    # One kernel per layer: gate, down projection and its residual add together.
    assert len(fused) == 1 and after[fused[0]] == layers and fused[0].endswith("add"), after
    assert sum(after.values()) == sum(before.values()) - layers


def test_fused_kernel_gets_the_gemv_schedule() -> None:
    """dlight's GEMV rule (a cross-thread reduction with rfactor), not the Fallback rule's loop."""
    mod = _legalized(True)
    (name,) = [gv.name_hint for gv in mod.get_global_vars() if "silu" in gv.name_hint and "NT_matmul" in gv.name_hint]
    script = mod[name].script()
    assert "tirx.is_scheduled" in script and "_rf_local" in script and 'thread="threadIdx.x"' in script


@pytest.mark.parametrize("func", ["prefill", "batch_prefill", "batch_decode"])
def test_other_shapes_keep_their_kernels(func: str) -> None:
    """Only static single-token shapes are fused: prefill's GEMMs (and batch_decode's symbolic batch)
    are left as they were."""
    assert call_tir_kernels(_legalized(True), func) == call_tir_kernels(_legalized(False), func)


def _gated(n: int, sections: int, seq: int = 1) -> relax.Function:
    """silu(split(x, sections)[0]) * split(x, sections)[1] on a [1, seq, n] tensor."""
    from tvm.relax.frontend import nn

    class Gate(nn.Module):
        def forward(self, x: nn.Tensor) -> nn.Tensor:
            parts = nn.op.split(x, sections, axis=-1)
            return nn.op.silu(parts[0]) * parts[1]

    mod, _ = Gate().export_tvm(spec={"forward": {"x": nn.spec.Tensor([1, seq, n], "float32")}})
    return mod["forward"]


@pytest.mark.parametrize(
    ("n", "sections", "seq", "rewritten"),
    [(8, 2, 1, True), (12, 3, 1, False), (8, 2, 4, False)],
    ids=["halves", "three-way split", "several tokens"],
)
def test_gate_rewrite_only_for_single_token_halves(n: int, sections: int, seq: int, rewritten: bool) -> None:
    from hearth.build.fusion import _gate_from_two_buffers

    func = _gated(n, sections, seq)
    out = _gate_from_two_buffers(func)
    assert ("strided_slice" in out.script()) == rewritten
    if not rewritten:
        tvm.ir.assert_structural_equal(out, func)
        return
    # The rewrite computes the same values (here on the CPU, both as plain Relax).
    import numpy as np

    x = np.random.default_rng(0).standard_normal((1, seq, n)).astype("float32")
    results = []
    for f in (func, out):
        exe = relax.build(tvm.IRModule({"main": f.with_attr("global_symbol", "main")}), target="llvm")
        vm = relax.VirtualMachine(exe, tvm.cpu())
        results.append(vm["main"](tvm.runtime.tensor(x)).numpy())
    np.testing.assert_array_equal(results[0], results[1])
