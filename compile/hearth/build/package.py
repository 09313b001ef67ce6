"""`hearth compile`: a Hugging Face checkpoint -> a verified web package.

    source -> architecture + config -> nn.Module (per target) -> quantize -> export -> build
           -> weights (quantized shards) -> tokenizer + mlc-chat-config.json -> manifest

Everything is written into a temp folder and renamed into place at the end. The package's build
key (a hash of every input) names its copy in the shared store, <cache>/packages/<key>/ (outside
any checkout, so a second clone, `make test` and `make demo` reuse it), and dist/<model-id>/<quant>/
is a verified copy of that: a rebuild of unchanged inputs is a copy, or a no-op.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tvm

from .. import __version__
from ..cache import atomic_dir, cache_root, clean_stale_temps, content_key, hash_files, sha256_file
from ..errors import HearthError
from ..models import get_architecture
from ..quant import build_plan, get_scheme
from ..targets import get_target
from ..tasks import copy_tokenizer, get_task
from ..weights.convert import convert_weights
from ..weights.gguf_blocks import check_carry_over
from ..weights.manifest import MANIFEST, IntegrityError, verify_package, write_manifest
from ..weights.reader import CheckpointReader
from ..weights.source import resolve_source
from .input_checks import check_tokenizer
from .pipeline import build_target, write_library

Progress = Callable[[str, int, int], None]


@dataclass
class CompileResult:
    package_dir: Path
    cached: bool
    seconds: dict[str, float] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


# Hearth's own folders whose code goes into a package (model definitions, quantization, weight
# conversion, per-task export and config, compile/link, the wasm runtime).
PACKAGE_CODE = ("build", "models", "quant", "weights", "runtime", "tasks")


class CompileOptionError(HearthError, ValueError):
    """A compile option outside its allowed values."""


# `hearth compile --decode-fusion` -> relax_pipeline's fuse argument (build/fusion.py's modes).
# decode_fusion name -> build/fusion.py mode. "staged" prefetches each thread's weights into registers before
# the prologue ("-p"): bit-identical logits, and on an H100 the Qwen2.5-0.5B shape's decode GPU time per token
# 2.50 -> 2.04 ms (SmolLM2-135M 2.11 -> 2.01; docs/benchmarks.md, "On the H100, fourth run").
DECODE_FUSION: dict[str, bool | str] = {"none": False, "staged": "staged-p"}


def _build_key(
    src_path: Path, quant: str, targets: list[str], options: dict[str, Any], source_sha: str | None = None
) -> str:
    """Every input of the package: checkpoint files (a GGUF source: the file's SHA-256), recipe,
    compiler and Hearth's own code."""
    code = Path(__file__).resolve().parents[1]
    inputs = [p for p in src_path.iterdir() if p.is_file() and not p.name.startswith(".")]
    if source_sha:  # the converted folder is a function of the file (and of Hearth's code, hashed below)
        inputs = [p for p in inputs if p.suffix != ".safetensors"]
    # Hashing multi-GB weights each time would cost seconds; size+mtime is the usual proxy
    # for large files, content for the small ones (configs, tokenizers).
    parts: list[str | bytes] = [
        tvm.__version__,
        __version__,
        quant,
        ",".join(targets),
        json.dumps(options, sort_keys=True),
        source_sha or "",
    ]
    for p in sorted(inputs):
        st = p.stat()
        parts.append(
            f"{p.name}:{st.st_size}:{int(st.st_mtime)}" if st.st_size > 64 << 20 else p.name + ":" + sha256_file(p)
        )
    # Only the code that shapes a package: editing the server, eval or CLI must not rebuild them.
    sources = [f for d in PACKAGE_CODE for f in (code / d).rglob("*.py")] + [code / "__init__.py", code / "cache.py"]
    parts.append(hash_files(sources, root=code))
    return content_key(parts)


def compile_package(
    model: str,
    quant: str = "q4f16_1",
    targets: list[str] | None = None,
    out_root: Path = Path("dist"),
    *,
    context_window_size: int | None = None,
    prefill_chunk_size: int | None = None,
    model_id: str | None = None,
    embed_batch_sizes: list[int] | None = None,
    embed_seq_lens: list[int] | None = None,
    decode_fusion: str = "none",
    force: bool = False,
    progress: Progress | None = None,
) -> CompileResult:
    """Compile `model` (folder or hub id) into out_root/<model_id>/<quant>/.

    What the options mean depends on the model's task (hearth.tasks): decoders (chat) size the KV
    cache with context_window_size / prefill_chunk_size; encoders (embedding) cap max_seq_length
    with context_window_size and get one function per bucket, embed_batch_sizes x embed_seq_lens.
    decode_fusion "staged" folds RMSNorm and the SwiGLU gate into the decode GEMVs of GPU builds
    (build/staged_gemv.py; faster on an H100, slower on CPU-emulated WebGPU: docs/benchmarks.md).
    The target "webgpu-fused" is that WebGPU build as a library of its own, next to the plain "webgpu"
    one, whatever decode_fusion says: the SDK loads it on hardware adapters, the plain one on software ones.
    """
    targets = targets or ["webgpu"]
    if decode_fusion not in DECODE_FUSION:
        raise CompileOptionError(f"decode_fusion must be one of {', '.join(DECODE_FUSION)}, got {decode_fusion!r}")
    note = progress or (lambda step, done, total: None)
    t0 = time.perf_counter()
    # Validate every input before any heavy work, so a typo fails in milliseconds.
    scheme = get_scheme(quant)
    specs = [get_target(t) for t in targets]
    if decode_fusion != "none" and (own := [s.name for s in specs if s.decode_fusion != "none"]):
        raise CompileOptionError(
            f"decode_fusion {decode_fusion!r} already fuses every GPU build, so target {own[0]} would be a second copy "
            f"of the fused webgpu build: drop --decode-fusion (webgpu stays plain) or --target {own[0]}"
        )
    source = resolve_source(model)
    check_carry_over(scheme, source)  # a *_gguf scheme needs a GGUF whose block types it can carry exactly
    check_tokenizer(source.path)  # an invalid tokenizer.json fails here, not at load
    arch = get_architecture(source.config.get("model_type", "<missing model_type>"))
    task = get_task(arch.task)
    config, task_options = task.configure(
        arch,
        source,
        context_window_size=context_window_size,
        prefill_chunk_size=prefill_chunk_size,
        embed_batch_sizes=embed_batch_sizes,
        embed_seq_lens=embed_seq_lens,
    )
    options: dict[str, Any] = {
        "context_window_size": context_window_size,
        "prefill_chunk_size": prefill_chunk_size,
        **task_options,
    }
    if decode_fusion != "none":  # absent by default, so default builds keep their keys
        options["decode_fusion"] = decode_fusion
    # A target with its own fusion (webgpu-fused): its mode lives in targets.py, which the key does not
    # hash, so it goes in here; only packages that have such a target get the entry.
    if fused_targets := {s.name: s.decode_fusion for s in specs if s.decode_fusion != "none"}:
        options["target_decode_fusion"] = fused_targets
    reader = CheckpointReader(source.path)

    key = _build_key(source.path, quant, targets, options, source.gguf["sha256"] if source.gguf else None)
    model_id = model_id or source.model_id
    final = Path(out_root) / model_id / scheme.name
    clean_stale_temps(final)  # leftovers of killed compiles (atomic_dir cleans when it runs)
    if not force and _is_valid_build(final, key):
        return CompileResult(final, cached=True, manifest=json.loads((final / MANIFEST).read_text()))
    # The model id is part of the package (file names, manifest), so it is part of the store key.
    stored = package_store() / content_key([key, model_id])
    if not force and _is_valid_build(stored, key):
        note("copy from the package store", 0, 1)
        with atomic_dir(final) as tmp:
            shutil.copytree(stored, tmp, dirs_exist_ok=True)
        return CompileResult(final, cached=True, manifest=verify_package(final))

    seconds: dict[str, float] = {}
    steps = len(specs) + 3
    with atomic_dir(stored) as tmp:
        libs: dict[str, str] = {}
        named_params = None
        for i, spec in enumerate(specs):
            note(f"build {spec.name}", i, steps)
            ts = time.perf_counter()
            fuse = DECODE_FUSION[spec.decode_fusion] or DECODE_FUSION[decode_fusion]
            built = build_target(arch, config, scheme, spec, fuse=fuse)
            module, named_params = built.module, built.named_params
            lib = f"{model_id}-{scheme.name}-{spec.name}.{'wasm' if spec.is_wasm else 'so'}"
            write_library(built.executable, spec, tmp / lib)
            libs[spec.name] = lib
            seconds[f"build_{spec.name}"] = time.perf_counter() - ts

        note("weights", len(specs), steps)
        ts = time.perf_counter()
        plan = build_plan(module, scheme)
        written = convert_weights(
            reader,
            arch.param_map(config),
            plan,
            tmp,
            progress=lambda d, n: note(f"weights {d}/{n}", len(specs), steps),
            source=source,
        )
        expected = [name for name, _ in named_params]
        if sorted(written) != sorted(expected):
            raise RuntimeError(
                f"weights written ({len(written)}) do not match the model's parameters ({len(expected)})"
            )
        seconds["weights"] = time.perf_counter() - ts

        note("package", len(specs) + 1, steps)
        tokenizer_files = copy_tokenizer(source.path, tmp)
        meta = task.metadata(config, scheme.name, named_params)
        cfg = task.package_config(source, config, scheme, tokenizer_files, libs, meta)
        cfg["params"] = meta["params"]  # packed order: the SDK fetches weights by these names
        (tmp / "mlc-chat-config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        n_params = sum(math.prod(p.shape) for p in plan.params.values())
        seconds["total"] = time.perf_counter() - t0
        manifest_meta = {
            "format": "hearth-package/1",
            "model_id": model_id,
            "source": source.origin,
            **({"source_file": source.gguf} if source.gguf else {}),
            "license": source.license,
            "model_type": config.model_type,
            "model_task": arch.task,
            "quantization": scheme.name,
            "bits_per_param": round(plan.bits_per_param(), 4),
            "source_params": n_params,
            "targets": libs,
            "build_key": key,
            "tool": {"hearth": __version__, "tvm": tvm.__version__, "python": platform.python_version()},
            "compile_seconds": {k: round(v, 2) for k, v in seconds.items()},
        }
        write_manifest(tmp, manifest_meta)
        note("done", steps, steps)
    with atomic_dir(final) as tmp:
        shutil.copytree(stored, tmp, dirs_exist_ok=True)
    doc = json.loads((final / MANIFEST).read_text())
    return CompileResult(final, cached=False, seconds=seconds, manifest=doc)


def package_store() -> Path:
    """Where every built package is kept by build key, shared by all checkouts (`$HEARTH_CACHE`)."""
    return cache_root() / "packages"


def _is_valid_build(folder: Path, key: str) -> bool:
    """A complete, undamaged package of exactly this build key (a damaged one is rebuilt)."""
    if not (folder / MANIFEST).is_file():
        return False
    try:
        return verify_package(folder).get("build_key") == key
    except (IntegrityError, json.JSONDecodeError, KeyError):
        return False
