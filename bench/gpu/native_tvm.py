"""Device side: the TVM-native build of a decoder package (CUDA on the H200, or llvm to test it
here), driven like hearth.native.decoder, with only TVM's *runtime* (no libtvm_compiler.so, so
no hearth import: hearth pulls in the compiler).

    python bench/gpu/native_tvm.py <package_dir> <lib.so> --device cuda [--runs 5] [--decode-new 128] [--pipelined]

Weights come from the package's params_shard_*.bin (random ones on the H200: make_shards.py);
prints one JSON line with the same samples as sdk/scripts/bench-llm.mjs.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tvm
import tvm_ffi
from tvm.contrib import tvmjs
from tvm.runtime.vm import VirtualMachine
from tvm_ffi import Shape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from protocol import run_protocol  # noqa: E402


def load_cuda_runtime(arch: str) -> None:
    """The wheel's CUDA runtime sidecar registers device_api.cuda; load it explicitly in runtime-only mode.

    TVM 0.27 keeps CUDA kernels as source in the exported .so (fmt "cuda") and compiles them when the
    module loads, through the global `tvm_callback_cuda_compile`. TVM's own callback needs the
    compiler library (Target.current), so this registers one that runs the machine's nvcc
    (-O3 --use_fast_math, as TVM's NVRTC default) and caches cubins on disk by source hash: the
    first load pays the compile (reported in load_cold_ms), later ones do not.
    """
    lib = Path(tvm.__file__).parent / "lib" / "libtvm_runtime_cuda.so"
    ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    cache = Path(os.environ.get("HEARTH_CUBIN_CACHE", "/tmp/hearth-cubin"))
    cache.mkdir(parents=True, exist_ok=True)
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"

    @tvm_ffi.register_global_func("tvm_callback_cuda_compile", override=True)
    def _compile(code: str) -> bytearray:
        key = hashlib.sha256(f"{arch}\0{code}".encode()).hexdigest()[:24]
        out = cache / f"{key}.cubin"
        if not out.is_file():
            src = cache / f"{key}.cu"
            src.write_text(code)
            cmd = [nvcc, "--cubin", "-O3", "--use_fast_math", f"-arch={arch}", "-o", str(out), str(src)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"nvcc failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        return bytearray(out.read_bytes())


class Decoder:
    def __init__(self, pkg: Path, lib: Path, dev: tvm.runtime.Device) -> None:
        cfg = json.loads((pkg / "mlc-chat-config.json").read_text())
        self.cfg = cfg
        params, _ = tvmjs.load_tensor_cache(str(pkg), dev)
        self.params = [params[p["name"]] for p in cfg["params"]]
        self.dev = dev
        self.vm = VirtualMachine(tvm.runtime.load_module(str(lib)), dev)
        self.chunk = int(cfg["prefill_chunk_size"])
        self.kv = self.vm["create_paged_kv_cache"](
            Shape([1]), Shape([int(cfg["context_window_size"])]), Shape([self.chunk]), Shape([16]), Shape([0])
        )
        # As hearth.native.decoder: Gemma 3 with a window shorter than its context returns a pair of caches
        # (global, local), and the last one slides by mlc-chat-config's sliding_window_size.
        self.caches = list(self.kv) if isinstance(self.kv, tvm_ffi.Array) else [self.kv]
        self.window = int(cfg.get("sliding_window_size", -1))
        g = tvm.get_global_func
        self._add, self._clear = g("vm.builtin.kv_state_add_sequence"), g("vm.builtin.kv_state_clear")
        self._begin, self._end = g("vm.builtin.kv_state_begin_forward"), g("vm.builtin.kv_state_end_forward")
        self._slide = g("vm.builtin.attention_kv_cache_enable_sliding_window_for_seq")
        self.reset()

    def reset(self) -> None:
        for kv in self.caches:
            self._clear(kv)
            self._add(kv, 0)
        if self.window > 0:
            self._slide(self.caches[-1], 0, self.window, 0)

    def _forward(self, fn: str, ids: list[int]) -> int:
        for kv in self.caches:
            self._begin(kv, Shape([0]), Shape([len(ids)]))
        emb = self.vm["embed"](tvm.runtime.tensor(np.array(ids, dtype="int32"), self.dev), self.params)
        out = self.vm[fn](emb._create_view((1, len(ids), emb.shape[-1])), self.kv, self.params)
        for kv in self.caches:
            self._end(kv)
        # Logits back to the host, as the WebGPU engine reads them back; argmax there.
        return int(np.argmax(out[0].numpy().reshape(-1)))

    def prefill(self, ids: list[int]) -> int:
        tok = 0
        for s in range(0, len(ids), self.chunk):
            tok = self._forward("prefill", ids[s : s + self.chunk])
        return tok

    def decode(self, tok: int) -> int:
        return self._forward("decode", [tok])

    def decode_greedy(self, tok: int, n: int) -> list[int]:
        """`n` greedy decode steps from `tok` without a host sync between them: the argmax is taken on the
        device (torch through DLPack, on the same default stream as TVM's kernels) and written into the
        next step's device-side input, so the host enqueues step k + 1 while the device runs step k; the
        tokens come back once, at the end. The reference for the WebGPU engine's pipelined greedy path
        (DecoderModel.decodeGreedy)."""
        import torch

        ids = tvm.runtime.tensor(np.array([tok], dtype="int32"), self.dev)
        ids_t = torch.from_dlpack(ids)
        picked = torch.empty(n, dtype=torch.int32, device=ids_t.device)
        for i in range(n):
            for kv in self.caches:
                self._begin(kv, Shape([0]), Shape([1]))
            emb = self.vm["embed"](ids, self.params)
            out = self.vm["decode"](emb._create_view((1, 1, emb.shape[-1])), self.kv, self.params)
            for kv in self.caches:
                self._end(kv)
            nxt = torch.argmax(torch.from_dlpack(out[0]).reshape(-1)).to(torch.int32)
            picked[i] = nxt
            ids_t.copy_(nxt.reshape(1))
        return [int(t) for t in picked.cpu()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", type=Path)
    ap.add_argument("lib", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-new", type=int, default=128)
    ap.add_argument("--arch", default="sm_90a", help="nvcc -arch for the kernels (sm_90a: H100/H200)")
    ap.add_argument(
        "--pipelined",
        action="store_true",
        help="decode with decode_greedy (argmax on the device, no host sync per step), not a host argmax per step",
    )
    args = ap.parse_args()
    if args.device == "cuda":
        load_cuda_runtime(args.arch)
    dev = tvm.device(args.device, 0)
    loads = []
    for _ in range(2):
        t0 = time.perf_counter()
        dec = Decoder(args.package, args.lib, dev)
        dev.sync()
        loads.append((time.perf_counter() - t0) * 1000)
    cfg = dec.cfg
    samples, skipped = run_protocol(
        dec.reset,
        dec.prefill,
        dec.decode,
        int(cfg["vocab_size"]),
        int(cfg["context_window_size"]),
        args.runs,
        [128, 512],
        args.decode_new,
        decode_run=(lambda tok, n: dec.decode_greedy(tok, n)) if args.pipelined else None,
    )
    samples["load_cold_ms"], samples["load_warm_ms"] = [loads[0]], [loads[1]]
    print(json.dumps({"runtime": f"tvm-native-{args.device}", "samples": samples, "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
