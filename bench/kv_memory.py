"""KV cache memory: pages and bytes per layer of TVM's paged cache, as Hearth's runtimes create it.

    .venv/bin/python bench/kv_memory.py <package> [--context 4096] [--prompt 600]
    .venv/bin/python bench/kv_memory.py --shape gemma3-270m|mistral-7b|phi3-mini-4k [--context N] [--prompt N]
                                        [--window N] [--dtype float16]

TVM's paged cache gives every layer the same number of pages (one page id indexes every layer's
pages): `ceil(capacity / 16) + 1`, plus 2 per sequence for a sliding cache. Full attention needs
capacity = context. A model whose EVERY layer slides (Mistral v0.1, Phi-3-mini-4k) runs the cache in
TVM's sliding mode and creates it with capacity window + 2 pages + one prefill chunk, whatever the
context (hearth.models.decoder.sequence_window). Gemma 3 puts its local layers in a second cache of
that kind (hearth.models.gemma3); its global layers keep a full-context one (docs/families.md).

With a package: its native (llvm) build. With --shape: the KV cache alone (the model's
create_paged_kv_cache and its kernels, compiled for llvm; no weights) of a published model's
config.json, so real shapes are measured without their checkpoints. Prints one JSON line: pages a
cache created for `--context` tokens gets, per layer, bytes per layer (pages x 2 x kv_heads x page x
head_dim x dtype) and for all layers (and what a full-context cache would take), the pages a
`--prompt`-token sequence holds, and the address space the cache took (VmSize: the pages are
allocated but untouched until written, so resident memory would not show them). A model with two
caches (Gemma 3: global layers, then local layers) gets a list entry per cache.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import tvm
from tvm import relax
from tvm.relax.frontend import nn
from tvm.runtime import ShapeTuple
from tvm_ffi import Array

from hearth.models import config_from_hf
from hearth.models.decoder import metadata

PAGE_SIZE = 16  # what hearth.native and the SDK create their caches with

# The attention-relevant part of each model's config.json on the Hugging Face hub.
SHAPES: dict[str, dict[str, Any]] = {
    # google/gemma-3-270m: 18 layers, every 6th global, the others a 512-token window.
    "gemma3-270m": {
        "model_type": "gemma3_text",
        "vocab_size": 262144,
        "hidden_size": 640,
        "intermediate_size": 2048,
        "num_hidden_layers": 18,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "max_position_embeddings": 32768,
        "sliding_window": 512,
        "query_pre_attn_scalar": 256,
        "rope_theta": 1000000.0,
        "rope_local_base_freq": 10000.0,
        "hidden_activation": "gelu_pytorch_tanh",
    },
    # mistralai/Mistral-7B-v0.1: every layer a 4096-token window, 32768 positions.
    "mistral-7b": {
        "model_type": "mistral",
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 32768,
        "sliding_window": 4096,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
    },
    # microsoft/Phi-3-mini-4k-instruct: every layer a 2047-token window, 4096 positions.
    "phi3-mini-4k": {
        "model_type": "phi3",
        "vocab_size": 32064,
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 4096,
        "sliding_window": 2047,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
    },
}

_available = tvm.get_global_func("vm.builtin.attention_kv_cache_get_num_available_pages")
_add = tvm.get_global_func("vm.builtin.kv_state_add_sequence")
_enable = tvm.get_global_func("vm.builtin.attention_kv_cache_enable_sliding_window_for_seq")
_begin = tvm.get_global_func("vm.builtin.kv_state_begin_forward")
_end = tvm.get_global_func("vm.builtin.kv_state_end_forward")


def vm_size_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmSize in /proc/self/status (Linux only)")


def cache_only_vm(
    config_dict: dict[str, Any], context: int, chunk: int | None, dtype: str
) -> tuple[relax.VirtualMachine, Any]:
    """The model's create_paged_kv_cache alone, compiled for llvm (what a package's llvm build holds)."""
    arch, config = config_from_hf(config_dict, context_window_size=context, prefill_chunk_size=chunk)
    target = tvm.target.Target("llvm")
    model = arch.model_class(config, dtype=dtype, target=target)
    size = {name: int for name in ("max_batch_size", "max_total_seq_len", "prefill_chunk_size", "page_size")}
    create = {**size, "support_sliding_window": int, "$": {"param_mode": "none", "effect_mode": "none"}}
    spec = nn.spec.ModuleSpec.from_raw({"create_paged_kv_cache": create}, model)
    with target:
        mod, _ = model.export_tvm(spec=spec)
    return relax.VirtualMachine(relax.build(mod, target=target), tvm.cpu()), config


def cache_layers(config: Any, caches: int) -> list[int]:
    """Layers per cache: all of them, or (global, local) for gemma3.py's pair."""
    if caches == 1:
        return [config.num_hidden_layers]
    local = list(config.layer_types).count("sliding_attention")
    return [config.num_hidden_layers - local, local]


def measure(vm: relax.VirtualMachine, config: Any, itemsize: int, window: int, args) -> dict[str, Any]:
    def create() -> Any:
        sizes = (1, args.context, args.chunk, PAGE_SIZE, 0)
        return vm["create_paged_kv_cache"](*(ShapeTuple([n]) for n in sizes))

    # The first call also starts the runtime's threads (and their malloc arenas): measure a second.
    warm = create()  # noqa: F841 - kept alive, so the second cache is allocated anew
    before = vm_size_mib()
    kv = create()
    grew = vm_size_mib() - before
    caches = list(kv) if isinstance(kv, Array) else [kv]
    pages = [int(_available(c)) for c in caches]
    # One sequence through the caches' bookkeeping only (no attention): what a prompt holds. The
    # window goes to the last cache, as hearth.native and the SDK do.
    for c in caches:
        _add(c, 0)
    if window > 0:
        _enable(caches[-1], 0, window, 0)
    done = 0
    while done < args.prompt:
        n = min(args.chunk, args.prompt - done)
        for c in caches:
            _begin(c, ShapeTuple([0]), ShapeTuple([n]))
            _end(c)
        done += n
    page_bytes = 2 * config.num_key_value_heads * PAGE_SIZE * config.head_dim * itemsize
    layers = cache_layers(config, len(caches))
    return {
        "context": args.context,
        "cache_layers": layers,
        "pages_per_layer": pages,
        "bytes_per_layer": [p * page_bytes for p in pages],
        "bytes_all_layers": sum(p * page_bytes * n for p, n in zip(pages, layers)),
        "bytes_full_context": (-(-args.context // PAGE_SIZE) + 1) * page_bytes * config.num_hidden_layers,
        "prompt_tokens": args.prompt,
        "pages_held_by_prompt": [p - int(_available(c)) for p, c in zip(pages, caches)],
        "vm_size_cache_mib": round(grew, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("package", type=Path, nargs="?")
    ap.add_argument("--shape", choices=sorted(SHAPES))
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--prompt", type=int, default=600)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="--shape only")
    ap.add_argument("--window", type=int, help="--shape only: replace its sliding_window")
    ap.add_argument("--chunk", type=int, help="--shape only: prefill_chunk_size (default: the model's)")
    args = ap.parse_args()
    if (args.package is None) == (args.shape is None):
        ap.error("give a package folder or --shape, not both")
    if args.shape:
        shape = SHAPES[args.shape] if args.window is None else {**SHAPES[args.shape], "sliding_window": args.window}
        vm, config = cache_only_vm(shape, args.context, args.chunk, args.dtype)
        args.chunk = config.prefill_chunk_size
        itemsize = 2 if args.dtype == "float16" else 4
        result = {"shape": args.shape, "dtype": args.dtype, "window": config.sliding_window}
        result["prefill_chunk_size"] = config.prefill_chunk_size
        window = int(metadata(config)["sliding_window_size"])  # what the runtimes enable per sequence
    else:
        from hearth.native import load_decoder

        dec, chat = load_decoder(args.package, target="llvm")
        vm, args.chunk = dec.vm, dec.prefill_chunk_size
        itemsize = 4 if "f32" in chat["quantization"] else 2
        kvc = chat["model_config"]
        _, config = config_from_hf(kvc, context_window_size=chat["context_window_size"])
        result = {"package": str(args.package), "prefill_chunk_size": args.chunk}
        window = int(chat.get("sliding_window_size", -1))
    result.update(
        measure(vm, config, itemsize, window, args),
        sliding_window_size=window,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
