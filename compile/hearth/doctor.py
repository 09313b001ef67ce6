"""`hearth doctor`: is every piece of the toolchain here and working?

Each check returns a Check; the table shows status, details and, for failures, the fix.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from .paths import BROWSER_TESTS, REPO, SDK
from .runtime.build import runtime_dir

SETUP_HINT = "run `make setup` (as root it apt-gets emscripten, chromium, mesa-vulkan-drivers from bookworm-backports)"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def check_tvm() -> Check:
    try:  # TVM is imported inside the check: a missing or broken install is what it reports
        import tvm
        from tvm import te

        from .targets import WASM32_HOST

        # Compile a one-op kernel to a wasm32 object: proves LLVM has the WebAssembly backend.
        a = te.placeholder((4,), name="a")
        b = te.compute((4,), lambda i: a[i] + 1.0, name="b")
        tvm.compile(te.create_prim_func([a, b]), target=tvm.target.Target(WASM32_HOST))
        llvm = tvm.target.codegen.llvm_version_major()
        return Check("TVM + LLVM wasm32", True, f"tvm {tvm.__version__}, LLVM {llvm}, wasm32 codegen ok")
    except Exception as e:  # noqa: BLE001 - any failure here means the same fix
        return Check(
            "TVM + LLVM wasm32",
            False,
            f"{type(e).__name__}: {e}"[:200],
            "run `make setup` (installs apache-tvm==0.27.0.post1 into .venv)",
        )


def check_emcc() -> Check:
    if not shutil.which("emcc"):
        return Check("emcc", False, "not on PATH", "apt-get install emscripten (or `sudo make setup`)")
    out = _run(["emcc", "--version"]).stdout
    version = re.search(r"\d+\.\d+\.\d+", out)
    return Check("emcc", True, f"emscripten {version.group(0) if version else '?'} ({shutil.which('emcc')})")


def check_runtime() -> Check:
    d = runtime_dir()
    done = d / "done.json"
    if not done.exists():
        return Check("TVM wasm runtime", False, f"not built ({d})", "run `.venv/bin/hearth runtime build`")
    info = json.loads(done.read_text())
    secs = info.get("build_seconds")
    return Check("TVM wasm runtime", True, f"{d.name}" + (f", built in {secs:.0f} s" if secs else ""))


def check_node() -> Check:
    if not shutil.which("node"):
        return Check("node", False, "not on PATH", "install Node.js >= 20")
    version = _run(["node", "--version"]).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < 20:
        return Check("node", False, f"{version} is too old", "install Node.js >= 20")
    if not (SDK / "node_modules").exists():
        return Check("node", False, f"{version}; sdk/node_modules missing", "run `make setup` (npm ci in sdk/)")
    return Check("node", True, version)


def _adapter_check(name: str, script: list[str], fix: str) -> Check:
    try:
        proc = _run(script)
    except subprocess.TimeoutExpired:
        return Check(name, False, "timed out", fix)
    if proc.returncode != 0:
        lines = (proc.stderr + proc.stdout).splitlines()
        # Node prints its own version last; the useful line is the error itself.
        errors = [ln for ln in lines if "error" in ln.lower()] or lines
        return Check(name, False, errors[0].strip()[:200] if errors else f"exit {proc.returncode}", fix)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    limits = info.get("limits", {})
    mib = lambda v: f"{v / 2**20:.0f} MiB"  # noqa: E731
    detail = (
        f"{info.get('description') or info.get('device') or info.get('architecture') or '?'}"
        f" (vendor {info.get('vendor') or '?'}), shader-f16: {'yes' if info.get('shaderF16') else 'no'}, "
        f"maxStorageBufferBinding {mib(limits.get('maxStorageBufferBindingSize', 0))}, "
        f"maxBuffer {mib(limits.get('maxBufferSize', 0))}"
    )
    return Check(name, True, detail)


def check_node_webgpu() -> Check:
    return _adapter_check(
        "Node WebGPU (Dawn)",
        ["node", str(SDK / "scripts" / "probe-adapter.mjs")],
        "needs mesa-vulkan-drivers >= 25 (bookworm-backports) and `npm ci` in sdk/: run `make setup`",
    )


def check_chromium_webgpu() -> Check:
    if not shutil.which("chromium"):
        return Check(
            "Chromium WebGPU", False, "chromium not installed", "apt-get install chromium (or `sudo make setup`)"
        )
    return _adapter_check(
        "Chromium WebGPU",
        ["node", str(BROWSER_TESTS / "probe-adapter.mjs")],
        "Chromium must start headless with --enable-unsafe-webgpu (SwiftShader); run `make setup`",
    )


CHECKS: list[Callable[[], Check]] = [
    check_tvm,
    check_emcc,
    check_runtime,
    check_node,
    check_node_webgpu,
    check_chromium_webgpu,
]


def _safe(check: Callable[[], Check]) -> Check:
    """A check that crashes is reported as failed, never takes doctor down with it."""
    try:
        return check()
    except Exception as e:  # noqa: BLE001
        name = check.__name__.removeprefix("check_")
        return Check(name, False, f"{type(e).__name__}: {e}"[:200], SETUP_HINT)


def run_doctor(as_json: bool = False) -> int:
    results = [_safe(check) for check in CHECKS]
    if as_json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        table = Table(title="hearth doctor")
        table.add_column("piece")
        table.add_column("status")
        table.add_column("details")
        table.add_column("fix")
        for r in results:
            table.add_row(r.name, "[green]ok[/]" if r.ok else "[red]MISSING[/]", r.detail, r.fix)
        Console().print(table)
    return 0 if all(r.ok for r in results) else 1
