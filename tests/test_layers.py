"""The compiler's packages form a stack (docs/architecture.md): each imports only packages below it, so
there are no import cycles, hidden ones (function-local imports) included. Parsed with `ast`: no import
runs, so this takes milliseconds."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "compile" / "hearth"

# Bottom to top. A module may import its own package and anything listed before it.
LAYERS = [
    {"errors", "paths", "cache", "targets"},  # leaves
    {"models"},  # model definitions (Relax nn), parameter maps
    {"quant"},  # quantization schemes and layouts
    {"weights"},  # checkpoints in, shards + manifest out
    {"runtime"},  # the TVM wasm runtime build
    {"native"},  # run packages natively (verified)
    {"tasks"},  # per task (chat, embedding): export, metadata, config, checks, the native opener
    {"build"},  # Relax -> executables, packages
    {"eval"},  # quality measurements
    {"serve"},  # the HTTP server
    {"doctor"},  # toolchain checks
    {"cli"},  # the entry point
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported(path: Path) -> set[str]:
    """Hearth top-level packages `path` imports (relative or absolute, at any depth in the file)."""
    out: set[str] = set()
    here = list(path.relative_to(ROOT).parent.parts)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level > 0:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                names = parts[:1] or [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "hearth":
                names = node.module.split(".")[1:2] or [a.name for a in node.names]
            else:
                continue
            out.update(n for n in names if n in RANK)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("hearth.") and a.name.count("."))
    return out


def test_every_package_is_in_a_layer() -> None:
    tops = {_top(p) for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts} - {"__init__"}
    assert tops <= set(RANK), f"add {sorted(tops - set(RANK))} to LAYERS (and to docs/architecture.md)"


def test_imports_point_down_the_stack() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        if "__pycache__" in path.parts or path.name == "__init__.py" and path.parent == ROOT:
            continue
        me = _top(path)
        for dep in _imported(path):
            if dep != me and RANK[dep] >= RANK[me]:
                upward.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert upward == [], "imports against the layer order (docs/architecture.md):\n" + "\n".join(upward)


def test_the_check_sees_function_local_imports(tmp_path: Path) -> None:
    # The check must be able to fail: a function-local upward import is found.
    fake = ROOT / "models" / "_layer_probe.py"
    try:
        fake.write_text("def f():\n    from ..serve import app\n    return app\n")
        assert _imported(fake) == {"serve"}
    finally:
        fake.unlink()
