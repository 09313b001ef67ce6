"""`hearth`: one entry point for the ML engineer's jobs.

Subcommands are a small registry: each maps to a function taking the parsed args. Each imports what
it needs when it runs, so `hearth doctor` works without TVM and the serve/eval extras stay optional.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from .errors import USER_ERRORS, HearthError

console = Console(stderr=True)


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    return run_doctor(as_json=args.json)


def cmd_runtime_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .runtime.build import RuntimeBuildError, build_runtime

    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("TVM wasm runtime", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"runtime: {step}", completed=done, total=total)

        try:
            out = build_runtime(force=args.force, progress=progress)
        except RuntimeBuildError as e:
            console.print(f"[red]runtime build failed[/]\n{e}")
            return 1
    console.print(f"runtime ready: {out} ({time.perf_counter() - t0:.1f} s)")
    print(out)
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    """Build smoke cases; prints one case folder per line (cached by content unless --out)."""
    from .build.smoke import CASES, build_case, cached_case

    for name in args.case or list(CASES):
        t0 = time.perf_counter()
        if args.out:
            folder = build_case(CASES[name], Path(args.out) / name, target=args.target)
        else:
            folder = cached_case(name, target=args.target)
        console.print(f"{name} ({args.target}) -> {folder} ({time.perf_counter() - t0:.1f} s)")
        print(folder)
    return 0


def _int_list(text: str) -> list[int]:
    """argparse type for "1,8,32": positive integers, comma-separated."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers such as 1,8,32, got {text!r}")
    return sorted(set(values))


def cmd_compile(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .build.native_log import native_stderr_to
    from .build.package import compile_package
    from .cache import cache_root

    log_path = cache_root() / "logs" / f"compile-{os.getpid()}.log"
    with (
        native_stderr_to(log_path) as native,  # TVM's expected C++ warnings go to a log, counted below
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=(terminal := Console(file=native.terminal)),
        ) as bar,
    ):
        task = bar.add_task("compile", total=None)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"compile: {step}", completed=done, total=total)

        try:
            result = compile_package(
                args.model,
                args.quant,
                args.target or ["webgpu"],
                Path(args.out),
                context_window_size=args.context_window_size,
                prefill_chunk_size=args.prefill_chunk_size,
                model_id=args.model_id,
                embed_batch_sizes=args.embed_batch_sizes,
                embed_seq_lens=args.embed_seq_lens,
                decode_fusion=args.decode_fusion,
                force=args.force,
                progress=progress,
            )
        except USER_ERRORS as e:
            terminal.print(f"[red]hearth compile: {e}[/]")
            return 2
    m = result.manifest
    size = sum(f["bytes"] for f in m["files"]) / 2**20
    state = "up to date (cached)" if result.cached else f"built in {result.seconds['total']:.1f} s"
    if n := native.warnings():
        state += f"; {n} TVM warnings (expected) in {log_path}"
    else:
        log_path.unlink(missing_ok=True)
    console.print(
        f"{result.package_dir}: {state}; {size:.1f} MiB, {m['bits_per_param']} bits/param, "
        f"targets {', '.join(m['targets'])}"
    )
    print(result.package_dir)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .serve.app import create_app
    except ImportError as e:  # compiling does not need the server's dependencies
        console.print(f"[red]hearth serve needs the serve extra ({e}): pip install -e '.[serve]'[/red]")
        return 2

    app_dir = Path(args.app) if args.app and Path(args.app).is_dir() else None
    console.print(
        f"serving {args.dist}/ at /models/"
        + (f" and {app_dir}/ at /" if app_dir else "")
        + f" on http://{args.host}:{args.port}"
    )
    if args.native_api:
        console.print(
            "native fallback API on: /v1/chat/completions, /v1/embeddings, /v1/models "
            "(llvm builds; prompts sent to it leave the browser)"
        )
    try:
        app = create_app(
            Path(args.dist),
            app_dir,
            native_api=args.native_api,
            bound_host=args.host,
            allowed_hosts=args.allow_host or (),
            allowed_origins=args.allow_origin or (),
        )
    except USER_ERRORS as e:  # e.g. a bad HEARTH_SERVE_* limit: the message names the variable
        console.print(f"[red]hearth serve: {e}[/red]")
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .eval.command import run_eval

    return run_eval(args, console)


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check every piece of the toolchain")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)

    runtime = sub.add_parser("runtime", help="the TVM WebAssembly runtime").add_subparsers(dest="action", required=True)
    p = runtime.add_parser("build", help="build (once, cached by TVM version) the wasm runtime objects")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(func=cmd_runtime_build)

    from .build.smoke import CASES
    from .targets import TARGETS

    p = sub.add_parser("serve", help="serve the demo app and dist/ packages (FastAPI)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--dist", default="dist", help="package root served at /models/")
    p.add_argument("--app", default="demo_rag/dist", help="built web app served at / (if present)")
    p.add_argument(
        "--native-api",
        action="store_true",
        default=os.environ.get("HEARTH_NATIVE_API", "") not in ("", "0"),
        help="also serve OpenAI-compatible /v1/chat/completions and /v1/embeddings, running the packages' llvm "
        "builds natively (off by default; env HEARTH_NATIVE_API=1); "
        "limits: HEARTH_SERVE_* variables (docs/serve-limits.md)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="also answer requests whose Host is NAME (repeatable; '*' for any). Default: loopback names, IP addresses "
        "and --host only, which stops DNS-rebinding pages",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="also answer pages at ORIGIN, with CORS, e.g. http://localhost:5173 (repeatable; '*' for any). Default: "
        "this server's own origin only, so other sites cannot use the models through a visitor's browser",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "compile", help="compile a Hugging Face checkpoint or a GGUF file into a web package under dist/"
    )
    p.add_argument(
        "model",
        help="local checkpoint folder, a .gguf file (or a folder holding one), or a hub id (org/name) when online",
    )
    p.add_argument(
        "--quant",
        default="q4f16_1",
        help="q0f32, q0f16, q4f16_1 (default), q4f32_1, q8f16_1, q8f32_1; q4f16_mse / q4f32_mse: q4's layout "
        "and kernels with MSE-searched scales (lower error, same size; docs/eval.md); q4f16_gguf / q4f32_gguf: "
        "a GGUF's own Q4_0/Q4_1/Q8_0/Q4_K codes, no second rounding "
        "(q8f16_gguf / q8f32_gguf for Q5_0 / Q8_0 Linears; q8f32_gguf_near: also Q6_K, re-quantized to 8 bits, "
        "not exact; docs/gguf.md)",
    )
    p.add_argument(
        "--target",
        action="append",
        choices=list(TARGETS),
        help="repeatable; default webgpu. webgpu-fused: a second WebGPU library with the staged decode fusion, "
        "which the SDK loads on hardware GPUs (the plain one on software adapters). webgpu-fused-sg32 / -sg8: "
        "that build with subgroup-shuffle reductions, loaded instead where the adapter's subgroups are exactly "
        "32 (NVIDIA) / 8 lanes wide",
    )
    p.add_argument("--out", default="dist", help="package root (default: dist)")
    p.add_argument("--context-window-size", type=int, default=None)
    p.add_argument("--prefill-chunk-size", type=int, default=None)
    p.add_argument("--model-id", default=None, help="package name under --out (default: the checkpoint folder name)")
    p.add_argument(
        "--embed-batch-sizes",
        type=_int_list,
        default=None,
        metavar="N,N,...",
        help="encoders: batch sizes of the static shape buckets (default 1,8,32)",
    )
    p.add_argument(
        "--embed-seq-lens",
        type=_int_list,
        default=None,
        metavar="N,N,...",
        help="encoders: sequence lengths of the buckets, capped at max_seq_length (default 32,64,128,256,512)",
    )
    p.add_argument(
        "--decode-fusion",
        choices=["none", "staged"],
        default="none",
        help="every GPU build: 'staged' folds RMSNorm and the SwiGLU gate into the decode GEMVs (303 -> 212 launches "
        "per SmolLM2 token; faster on an H100, slower on CPU-emulated WebGPU; docs/benchmarks.md). "
        "--target webgpu-fused ships that build next to the plain one instead",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the package is up to date")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("smoke", help="compile the Linear-SiLU-Linear smoke cases")
    p.add_argument("--out", default=None, help="build into this folder (default: the content-hash cache)")
    # The smoke cases have no decode GEMVs: a fused target would be the plain one under another name.
    p.add_argument("--target", default="webgpu", choices=[t for t, s in TARGETS.items() if s.decode_fusion == "none"])
    p.add_argument("--case", action="append", choices=list(CASES), help="only this case (repeatable)")
    p.set_defaults(func=cmd_smoke)

    p = sub.add_parser(
        "eval",
        help="measure a compiled package (decoder: perplexity/top-1/KL; encoder: cosine/recall) "
        "against its source checkpoint (needs an llvm build)",
    )
    p.add_argument(
        "packages",
        nargs="+",
        metavar="package",
        help="package folder; with --compare several (or earlier --json results)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="evaluate every package given and compare them (table, ppl- or cosine-vs-bits plot)",
    )
    p.add_argument("--json", default=None, help="write the full result as JSON here")
    p.add_argument("--report", default=None, help="write a Markdown report here")
    p.add_argument("--plots", default=None, help="write PNG plots into this folder (needs matplotlib)")
    p.add_argument(
        "--reference", default=None, help="Hugging Face folder to compare with (default: the package's source)"
    )
    p.add_argument("--budget", default=None, help="budgets TOML (e.g. budgets/tiny.toml); exit 1 if one is exceeded")
    p.add_argument(
        "--text", default=None, help="evaluation text file (default: the reference's heldout.txt, else generated)"
    )
    p.add_argument("--window", type=int, default=None, help="tokens per window (default: min(context, 1024))")
    p.add_argument("--stride", type=int, default=None, help="window stride (default: window / 2)")
    p.add_argument("--max-tokens", type=int, default=None, help="evaluate only the first N tokens of the text")
    p.add_argument(
        "--qa",
        default=None,
        metavar="PROMPTS",
        help="document-QA answer accuracy instead: answer the RAG prompts in PROMPTS (bench/qa/retrieve.mjs) with the "
        "reference and each package (native llvm, greedy); --json writes every answer",
    )
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except HearthError as e:  # the commands print their own; this is the net for the rest (smoke, runtime)
        console.print(f"[red]hearth {args.command}: {e}[/red]", soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
