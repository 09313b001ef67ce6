"""sdk/scripts/generate.mjs on Dawn (lavapipe) from pytest: greedy tokens and per-step top logits of a
package, for the tests that compare two WebGPU builds of one package (test_webgpu_fused_target.py,
test_webgpu_subgroups*.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATE = REPO / "sdk" / "scripts" / "generate.mjs"


def generate(pkg: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """generate.mjs's JSON result for `pkg` (its last stdout line); `env` is added to this process's."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the WebGPU side cannot run (make setup)")
    cmd = ["node", str(GENERATE), str(pkg), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, **(env or {})})
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{' '.join(cmd[:3])} printed nothing ({proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(lines[-1])


def prompt(pkg: Path, n: int = 32) -> str:
    """n token ids inside the package's vocabulary, comma-separated (generate.mjs's --ids)."""
    vocab = json.loads((pkg / "mlc-chat-config.json").read_text())["vocab_size"]
    return ",".join(str((i * 7919 + 13) % vocab) for i in range(n))
