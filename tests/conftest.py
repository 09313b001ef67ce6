from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_json(cmd: list[str], timeout: float = 300) -> dict:
    """Run a harness CLI that prints one JSON object as its last stdout line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def call_tir_kernels(mod: Any, func: str) -> Counter[str]:
    """call_tir kernels of `func` in a Relax module by name, reshapes left out (the VM makes them views, no
    launch): what a GPU build launches per call (tests/test_fusion.py, test_fusion2.py)."""
    import tvm  # lazy: most test modules never need the compiler
    from tvm import relax

    calls: Counter[str] = Counter()
    call_tir = tvm.ir.Op.get("relax.call_tir")

    def visit(e: relax.Expr) -> None:
        if isinstance(e, relax.Call) and e.op == call_tir:
            name = e.args[0].name_hint
            if not (name.startswith(("reshape", "fused_reshape")) and "matmul" not in name):
                calls[name] += 1

    relax.analysis.post_order_visit(mod[func].body, visit)
    return calls
