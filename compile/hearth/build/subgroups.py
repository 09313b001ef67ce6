"""Subgroup reductions for the webgpu-fused-sg<N> targets: which cross-thread reductions become shuffles.

With supports_subgroups, TVM's LowerThreadAllreduce turns a reduction into subgroupShuffleDown trees only
when its shape fits the warp size (a divisor of it, or a multiple when max_num_threads <= size^2, for the
two-level tree). Any other reduction takes its workgroup-memory path *with a warp-synchronous tail*: the
last log2(size) steps run under `if (threadIdx.x < k)` with a workgroupBarrier() inside, which WGSL rejects
(a barrier must be in uniform control flow) and which is not a sync on WebGPU anyway. And the canonical
webgpu target caps workgroups at 256 threads, so a size-8 build would never take the two-level tree.

So LowerThreadAllreduce is replaced, for these builds only, by a per-kernel choice:
- a kernel whose reductions each span at most size^2 threads is lowered with max_num_threads = size^2
  (TVM's stand-in for that bound: it is the only thing LowerThreadAllreduce reads it for; the two-level
  tree is then exact, at most `size` partial sums meet in the second level);
- if that lowering still produced a warp-level sync (a reduction shape the shuffles do not cover), or a
  reduction is wider, the kernel is lowered as the plain webgpu build does (thread_warp_size 1:
  workgroup memory, a barrier per step, no subgroup op).
Every kernel keeps the package's one target (so the WGSL stays one module); only the lowering differs.

And the broadcast of a reduction's result, tvm_warp_shuffle(mask, value, lane, width, warp), names its source
lane as CUDA counts it, group * reduce_extent: past the subgroup for every group after the first (8 rows of
32 threads: lanes 0, 32, ..., 224). CUDA's shuffle wraps that modulo the width; WGSL's subgroupShuffle gives
an indeterminate value for an id >= the subgroup size. So on webgpu the lane is taken modulo the warp size
first: the same lane of the invocation's own subgroup, as CUDA reads it (subgroups are consecutive
local_invocation_index blocks of `warp` lanes, which TVM's lowering assumes anyway).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import tvm
from tvm import s_tir, tirx

from ..targets import webgpu_with

_SHUFFLE = "tirx.tvm_warp_shuffle"
_LOWER_SHUFFLE = tvm.ir.Op.get(_SHUFFLE).get_attr("webgpu.FLowerIntrinsic")


def _lower_shuffle_in_subgroup(call: tvm.ir.Call) -> tvm.ir.PrimExpr:
    mask, value, lane, width, warp = call.args
    return _LOWER_SHUFFLE(tirx.call_intrin(str(call.ty), _SHUFFLE, mask, value, tirx.floormod(lane, warp), width, warp))


# TVM's own rule (registered at level 10) maps the call to subgroupShuffle(value, lane) as it is.
tvm.ir.register_op_attr(_SHUFFLE, "webgpu.FLowerIntrinsic", _lower_shuffle_in_subgroup, level=11)

# The TIR printer's spelling of thread bindings, reductions and a warp-level sync (0.27 has no Python TIR
# visitor); the thread bindings come in both of the printer's forms.
_THREAD_LET = re.compile(r'(\w+) = T\.launch_thread\("threadIdx\.[xyz]", (\d+)\)')
_THREAD_WITH = re.compile(r'T\.launch_thread\("threadIdx\.[xyz]", (\d+)\) as (\w+)')
_ALLREDUCE = "T.tvm_thread_allreduce("
_WARP_SYNC = 'T.tvm_storage_sync("warp")'


def _top_level_args(text: str, start: int) -> list[str]:
    """The comma-separated arguments of the call whose "(" is just before `start`."""
    args, depth, current = [], 0, []
    for ch in text[start:]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    return [*args, "".join(current).strip()]


def _widest_reduction(script: str) -> int:
    """The most threads one cross-thread reduction of the kernel spans (0: none): tvm_thread_allreduce's
    trailing arguments are the thread variables it reduces over."""
    extents = {name: int(n) for name, n in _THREAD_LET.findall(script)}
    extents.update({name: int(n) for n, name in _THREAD_WITH.findall(script)})
    widest, at = 0, script.find(_ALLREDUCE)
    while at >= 0:
        args = _top_level_args(script, at + len(_ALLREDUCE))
        reduced = 1
        for arg in reversed(args):
            if arg not in extents:
                break
            reduced *= extents[arg]
        widest = max(widest, reduced)
        at = script.find(_ALLREDUCE, at + 1)
    return widest


def _lower_one(lower: tvm.transform.Pass, gv: tvm.ir.GlobalVar, func: tirx.PrimFunc, target: tvm.target.Target):
    return lower(tvm.IRModule({gv: func.with_attr("target", target)}))[gv]


def subgroup_allreduce_pass(lower: tvm.transform.Pass) -> tvm.transform.Pass:
    """`lower` (TVM's LowerThreadAllreduce) applied kernel by kernel as the module docstring says; functions
    whose target has no subgroups pass through `lower` unchanged."""

    @tvm.transform.module_pass(opt_level=0, name="HearthSubgroupAllreduce")
    def _pass(mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext) -> tvm.ir.IRModule:
        out = tvm.IRModule(attrs=mod.attrs) if mod.attrs is not None else tvm.IRModule()
        for gv, func in mod.functions.items():
            target = func.attrs.get("target") if isinstance(func, tirx.PrimFunc) and func.attrs else None
            subgroups = target is not None and bool(target.attrs.get("supports_subgroups", False))
            if target is None or target.kind.name != "webgpu" or not subgroups:
                out[gv] = _lower_one(lower, gv, func, target) if target is not None else func
                continue
            size = int(target.attrs["thread_warp_size"])
            lowered = None
            if _widest_reduction(func.script()) <= size * size:
                lowered = _lower_one(lower, gv, func, webgpu_with(target, size, size * size))
                if _WARP_SYNC in lowered.script():
                    lowered = None
            if lowered is None:  # the plain build's reduction: workgroup memory, uniform barriers
                lowered = _lower_one(lower, gv, func, tvm.target.Target({"kind": "webgpu"}))
            out[gv] = lowered.with_attr("target", target)
        return out

    return _pass


@contextlib.contextmanager
def subgroup_reductions() -> Iterator[None]:
    """While open, TVM's default TIR pipeline lowers reductions with subgroup_allreduce_pass. The pipeline
    is built inside tirx.build from s_tir.transform's names (a custom pipeline must be a registered name),
    so the name is swapped for the duration of one compile and put back after."""
    original = s_tir.transform.LowerThreadAllreduce
    s_tir.transform.LowerThreadAllreduce = lambda: subgroup_allreduce_pass(original())
    try:
        yield
    finally:
        s_tir.transform.LowerThreadAllreduce = original
