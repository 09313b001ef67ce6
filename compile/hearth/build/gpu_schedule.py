"""The GPU schedule rules Hearth applies after fusion: TVM's dlight defaults, or a prefill variant.

dlight's `Matmul` rule (the prefill GEMMs: dequantize_NT_matmul with the 4-bit decode inlined into the
shared-memory fetch of the weight) picks its tile config by target kind: cuda and rocm get a tuned config,
every other kind, webgpu included, the generic one (8x8 threads, 4x4 outputs each, K step 8, no vector
loads). On an H100 Hearth's WebGPU prefill ran at 0.40-0.47 of native CUDA (docs/benchmarks.md), and the
matmuls are most of a 128-token prefill's GPU time, so the variants below give WebGPU other Matmul configs.
The H100 A/B (bench/gpu/build_variant.py; docs/benchmarks.md, "Prefill: the matmul config") made "cuda" the
default: 128-token prefill 8221 -> 11942 tok/s on SmolLM2-135M, 3821 -> 7257 on the Qwen2.5-0.5B shape (the
matmuls' GPU time 11.0 -> 6.0 and 26.7 -> 11.0 ms), the same on lavapipe.

Every config keeps within WebGPU's portable limits: at most 256 invocations per workgroup and 16 KiB of
workgroup storage (the A and B tiles: (by*my + bx*mx) * micro_k * 4 bytes, plus storage_align padding).
"""

from __future__ import annotations

from dataclasses import asdict, replace

import tvm
from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import get_root_block
from tvm.s_tir.dlight.gpu.gemv import GEMV
from tvm.s_tir.dlight.gpu.matmul import Matmul
from tvm.target import Target

# prefill_schedule value -> Matmul config for non-cuda GPU targets; "dlight" keeps dlight's own choice.
# (A CUDA build keeps dlight's tuned config under every value: ConfiguredMatmul.get_configs.)
# No config sets vector_size > 1: with it dlight's Matmul fails TVM's WebGPU lowering (StorageRewrite's
# VectorTypeRewriter check `info.factor() % coeff == 0`) for these GEMMs. "cuda-v4" gets 4-wide loads into
# the shared tiles another way (FETCH_VECTOR below), which lowers.
# dlight's cuda/rocm config without its 2-wide loads: 8x16 threads, a 32 (tokens) x 64 (outputs) tile,
# K step 16, padded shared rows (storage_align). 6.5 KiB of workgroup storage.
_CUDA_TILES = Matmul.Config(
    block_size_x=8,
    block_size_y=16,
    micro_size_x=4,
    micro_size_y=4,
    micro_size_k=16,
    vector_size=1,
    unroll=256,
    use_shared=True,
    storage_align=True,
)

PREFILL_SCHEDULES: dict[str, Matmul.Config | None] = {
    "dlight": None,
    "cuda": _CUDA_TILES,
    # The same tiles with each thread's part of the cooperative fetch of both shared tiles (activations and
    # the decoded weights) as 4-wide vectors (FETCH_VECTOR below). TVM's WGSL codegen writes a vector access
    # to an f32 array as 4 scalar ones gathered into a vec4, so any gain is the index arithmetic and what the
    # driver's compiler merges: on the H100 no faster than "cuda" (11806 vs 11942 tok/s, SmolLM2, 128 tokens).
    # (A K-step-16 variant of the generic 8x8 config, also correct on lavapipe, was left out.)
    "cuda-v4": _CUDA_TILES,
    # Tile-search variants for the H100 A/B of the float16 prefill (bench/gpu/build_variant.py; x = tokens,
    # y = outputs). 64 x 64 outputs on 256 threads; 32 x 128; 64 x 64 on 128 threads with 8 x 4 per thread;
    # 32 x 32 on 64 threads (4x the workgroups: the 896-wide projections give a 32 x 64 tile only 14 columns);
    # the cuda tiles with a K step of 8 and of 32.
    "t64": replace(_CUDA_TILES, block_size_x=16),
    "t32x128": replace(_CUDA_TILES, block_size_y=32),
    "m8": replace(_CUDA_TILES, micro_size_x=8),
    "t32x32": replace(_CUDA_TILES, block_size_y=8),
    "k8": replace(_CUDA_TILES, micro_size_k=8),
    "k32": replace(_CUDA_TILES, micro_size_k=32),
}

#: What GPU builds use unless told otherwise (see the module docstring for the measurements).
DEFAULT_PREFILL_SCHEDULE = "cuda"

#: The tile-search candidates (bench only until a GPU run picks one; bench/gpu/README.md, "The f16 prefill").
TILE_SEARCH = ("t64", "t32x128", "m8", "t32x32", "k8", "k32")

# schedule -> vector width of the shared-tile fetch, applied after dlight's Matmul (ConfiguredMatmul.apply)
FETCH_VECTOR: dict[str, int] = {"cuda-v4": 4}

_WORKGROUP_STORAGE = 16384  # bytes: WebGPU's default maxComputeWorkgroupStorageSize
_WORKGROUP_INVOCATIONS = 256  # WebGPU's default maxComputeInvocationsPerWorkgroup


def check_prefill_schedule(name: str) -> str:
    if name not in PREFILL_SCHEDULES:
        raise ValueError(
            f"unknown prefill_schedule {name!r}: pick one of {', '.join(PREFILL_SCHEDULES)} "
            "(compile/hearth/build/gpu_schedule.py)"
        )
    return name


def _fits_webgpu(c: Matmul.Config) -> bool:
    threads = c.block_size_x * c.block_size_y * c.vthread_x * c.vthread_y
    rows = c.block_size_x * c.micro_size_x * c.vthread_x + c.block_size_y * c.micro_size_y * c.vthread_y
    pad = max(c.vector_size, 4) if c.storage_align else 0  # storage_align: vec_len padding (4: FETCH_VECTOR)
    return threads <= _WORKGROUP_INVOCATIONS and rows * (c.micro_size_k + pad) * 4 <= _WORKGROUP_STORAGE


for _name, _cfg in PREFILL_SCHEDULES.items():  # a config that cannot run on WebGPU is a bug here, not at load
    assert _cfg is None or _fits_webgpu(_cfg), f"prefill schedule {_name} exceeds WebGPU's workgroup limits"


class ConfiguredMatmul(Matmul):
    """dlight's Matmul with a fixed config for every target kind but cuda/rocm (which keep dlight's), and
    optionally `fetch_vector`-wide stores in the cooperative fetch of its shared tiles."""

    def __init__(self, config: Matmul.Config, fetch_vector: int = 1) -> None:
        super().__init__()
        self.config = config
        self.fetch_vector = fetch_vector

    def get_configs(self, target: Target) -> Matmul.Config:
        if target.kind.name in ("cuda", "rocm"):
            return super().get_configs(target)
        return Matmul.Config(**asdict(self.config))

    def apply(self, func: tirx.PrimFunc, target: Target, tune: bool) -> s_tir.Schedule | None:
        sch = super().apply(func, target, tune)
        if sch is None or self.fetch_vector == 1 or target.kind.name in ("cuda", "rocm"):
            return sch
        # dlight splits each shared fetch as [threadIdx.y, threadIdx.x, per-thread, vector_size (1 here)]:
        # a thread's elements are contiguous, so splitting its per-thread loop gives contiguous vectors.
        for block in sch.get_child_blocks(get_root_block(sch)):
            if not sch.get(block).name_hint.endswith("_shared"):
                continue
            per_thread = sch.get_loops(block)[-2]
            extent = sch.get(per_thread).extent
            if isinstance(extent, tirx.IntImm) and extent.value % self.fetch_vector == 0:
                _, vec = sch.split(per_thread, [None, self.fetch_vector])
                sch.vectorize(vec)
        return sch


# --- decode GEMVs ------------------------------------------------------------------------------------
# dlight's GEMV rule (the decode GEMVs the staged fusion leaves: o_proj + residual, and every GEMV of an
# unfused build) has tuned configs for cuda, metal, rocm, vulkan and opencl; webgpu gets its generic one:
# 1 x 64 threads (one output row per workgroup), no vector FMAs (VEC_C 1), the input vector read from global
# memory by every row. decode_gemv value -> the target kind whose dlight config webgpu kernels get instead
# ("dlight": dlight's own choice). dlight's TS x TR is clamped to the target's max_num_threads (256), so both
# run 8 rows x 32 threads with 4-wide FMAs over 4-byte-packed weights and the input vector staged once per
# workgroup in shared memory where it fits WebGPU's portable 16 KiB (LOAD_V_SHARED; dlight checks the size
# itself against the budget the proxy target below declares).
# "vulkan": shared vector loads 4 wide, the cross-thread reduction's buffer counted in the budget.
# "cuda": 8-wide shared vector loads; dlight assumes warp shuffles for cuda and leaves the reduction buffer
# out of its count, so the proxy declares 1 KiB less (the buffer a webgpu reduction without subgroups uses).
DECODE_GEMVS: dict[str, str | None] = {"dlight": None, "vulkan": "vulkan", "cuda": "cuda"}

#: What GPU builds use unless told otherwise (the H100 A/B decides: bench/gpu/build_variant.py --decode-gemv).
DEFAULT_DECODE_GEMV = "dlight"

_REDUCTION_BUFFER = 256 * 4  # bytes: a 256-thread f32 allreduce in workgroup memory


def check_decode_gemv(name: str) -> str:
    if name not in DECODE_GEMVS:
        choices = ", ".join(DECODE_GEMVS)
        raise ValueError(f"unknown decode_gemv {name!r}: pick one of {choices} (compile/hearth/build/gpu_schedule.py)")
    return name


class ConfiguredGEMV(GEMV):
    """dlight's GEMV rule scheduling webgpu's inner-reduction GEMVs (x W^T, the decode projections) as it
    does for `kind`: the schedule is built against a proxy target of that kind with WebGPU's limits, then
    lowered for webgpu as usual. Other kinds and the outer-reduction form are dlight's."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def proxy(self, target: Target) -> Target:
        threads = min(int(target.attrs["max_num_threads"]), _WORKGROUP_INVOCATIONS)
        storage = _WORKGROUP_STORAGE - (_REDUCTION_BUFFER if self.kind == "cuda" else 0)
        attrs = {"max_num_threads": threads, "max_shared_memory_per_block": storage}
        return Target({"kind": self.kind, **attrs})

    def sch_inner_reduction(
        self,
        sch: s_tir.Schedule,
        target: Target,
        block: s_tir.schedule.SBlockRV,
        vector_input_buffers: list[tirx.Buffer],
        epilogue_info: object,
    ) -> s_tir.Schedule | None:
        if target.kind.name == "webgpu":
            target = self.proxy(target)
        return super().sch_inner_reduction(sch, target, block, vector_input_buffers, epilogue_info)


def gpu_schedule_pass(prefill_schedule: str = "dlight", decode_gemv: str | None = None) -> tvm.transform.Pass:
    """The dlight pass of TVM's generic GPU pipeline (gpu_generic.legalize_passes' last step), with the
    Matmul rule configured by `prefill_schedule` and the GEMV rule by `decode_gemv` (None: DEFAULT_DECODE_GEMV,
    read when the pass is made, so a benchmark variant can set it for one build). Reductions and the fallback
    are dlight's."""
    config = PREFILL_SCHEDULES[check_prefill_schedule(prefill_schedule)]
    matmul = dl.gpu.Matmul() if config is None else ConfiguredMatmul(config, FETCH_VECTOR.get(prefill_schedule, 1))
    kind = DECODE_GEMVS[check_decode_gemv(DEFAULT_DECODE_GEMV if decode_gemv is None else decode_gemv)]
    return dl.ApplyDefaultSchedule(
        matmul,
        dl.gpu.GEMV() if kind is None else ConfiguredGEMV(kind),
        dl.gpu.Reduction(),
        dl.gpu.GeneralReduction(),
        dl.gpu.Fallback(),
    )
