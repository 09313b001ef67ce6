"""KV cache memory of a decoder package's native (llvm) build: pages and bytes, and what a prompt uses.

    .venv/bin/python bench/kv_memory.py <package> [--context 4096] [--prompt 600]

TVM's paged cache allocates `ceil(context / page_size) + 1` pages for every layer when it is
created, and one page id indexes every layer's pages, so per-layer sliding windows ("mha_sliding",
Gemma 3's local layers) do not shrink it (docs/benchmarks.md, "KV memory of the local layers").
Prints one JSON line: pages of a fresh cache, pages a `--prompt`-token prefill takes, and the
address space one more cache of `--context` tokens adds (VmSize: the pages are allocated but
untouched until written, so resident memory would not show them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tvm
from tvm.runtime import ShapeTuple

from hearth.native import load_decoder

PAGE_SIZE = 16  # what hearth.native and the SDK create their caches with


def vm_size_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmSize in /proc/self/status (Linux only)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("package", type=Path)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--prompt", type=int, default=600)
    args = ap.parse_args()

    available = tvm.get_global_func("vm.builtin.attention_kv_cache_get_num_available_pages")
    dec, _ = load_decoder(args.package, target="llvm")
    fresh = int(available(dec.kv))
    dec.prefill([3 + i % 1000 for i in range(args.prompt)])
    used = fresh - int(available(dec.kv))
    before = vm_size_mib()
    extra = dec.vm["create_paged_kv_cache"](
        ShapeTuple([1]),
        ShapeTuple([args.context]),
        ShapeTuple([dec.prefill_chunk_size]),
        ShapeTuple([PAGE_SIZE]),
        ShapeTuple([0]),
    )
    grew = vm_size_mib() - before
    result = {
        "package": str(args.package),
        "pages_fresh_cache": fresh,
        "prompt_tokens": args.prompt,
        "pages_used_by_prompt": used,
        "context": args.context,
        "pages_one_more_cache": int(available(extra)),
        "vm_size_one_more_cache_mib": round(grew, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
