"""The package target "webgpu-fused" (issue 17, item 1): the WebGPU build with the staged decode fusion as a
library of its own next to the plain "webgpu" one, and the SDK's choice between them (load option
webgpuBuild; the rule itself on adapter infos: sdk/test/webgpu-build.test.ts).

tiny-llama-trained q4f32_1 compiled by `hearth compile --target webgpu --target webgpu-fused` (cached by build
key), then on Dawn (lavapipe, a software adapter): the fused library, loaded by name or with webgpuBuild
"fused", gives the plain one's greedy tokens, its top logits equal up to the reduction order (the tolerance of
tests/test_fusion2.py); "auto" on lavapipe loads the plain one; asking for a build the package lacks names
the targets it has.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from hearth.build.package import CompileOptionError, compile_package
from hearth.cache import cache_root
from hearth.weights.manifest import verify_package
from webgpu_generate import generate, prompt

sys.path.insert(0, str(REPO / "scripts"))
import build_packages  # noqa: E402
import make_test_models as mtm  # noqa: E402

MODEL, QUANT = "tiny-llama-trained", "q4f32_1"


def _compile() -> subprocess.CompletedProcess[str]:
    out = cache_root() / "test-packages" / "webgpu-fused"
    cmd = [str(REPO / ".venv" / "bin" / "hearth"), "compile", str(mtm.ensure_test_model(MODEL)), "--quant", QUANT]
    cmd += ["--target", "webgpu", "--target", "webgpu-fused", "--out", str(out), "--model-id", MODEL]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@functools.cache
def package() -> Path:
    return Path(_compile().stdout.strip().splitlines()[-1])


def test_package_carries_both_webgpu_libraries() -> None:
    pkg = package()
    manifest = verify_package(pkg)
    assert manifest["targets"] == {
        "webgpu": f"{MODEL}-{QUANT}-webgpu.wasm",
        "webgpu-fused": f"{MODEL}-{QUANT}-webgpu-fused.wasm",
    }
    plain = (pkg / manifest["targets"]["webgpu"]).read_bytes()
    fused = (pkg / manifest["targets"]["webgpu-fused"]).read_bytes()
    assert b"hearth_rms_norm" in fused, "the staged RMSNorm + GEMV kernel is not in the webgpu-fused library"
    assert b"hearth_rms_norm" not in plain, "the plain webgpu library has the staged fusion"
    config = json.loads((pkg / "mlc-chat-config.json").read_text())
    assert config["model_lib"] == manifest["targets"]
    again = _compile()  # the same command again: no rebuild
    assert "up to date (cached)" in " ".join((again.stdout + again.stderr).split()), again.stderr


def test_fused_library_same_greedy_tokens_and_logits() -> None:
    """Greedy over 24 tokens with the top-5 logits at every position, plain vs fused library of one package."""
    pkg = package()
    args = ("--ids", prompt(pkg), "--max-new", "24", "--trace", "5")
    a = generate(pkg, *args, "--webgpu-build", "plain")
    b = generate(pkg, *args, "--webgpu-build", "fused")
    assert "error" not in a and "error" not in b, (a, b)
    assert (a["target"], b["target"]) == ("webgpu", "webgpu-fused")
    assert a["tokens"] == b["tokens"]
    worst = 0.0
    for sa, sb in zip(a["steps"], b["steps"], strict=True):
        assert [t for t, _ in sa["top"]][:2] == [t for t, _ in sb["top"]][:2] or sa["margin"] < 1e-3
        for (ta, la), (tb, lb) in zip(sa["top"], sb["top"], strict=True):
            if ta == tb:
                worst = max(worst, abs(la - lb) / max(1.0, abs(la)))
    assert worst < 1e-4, worst
    # The target by name loads the fused library too.
    c = generate(pkg, "--ids", prompt(pkg), "--max-new", "4", "--target", "webgpu-fused")
    assert c.get("target") == "webgpu-fused" and c["tokens"] == a["tokens"][:4], c


def test_auto_on_a_software_adapter_loads_the_plain_library() -> None:
    pkg = package()
    got = generate(pkg, "--ids", prompt(pkg, 8), "--max-new", "2")
    assert "error" not in got, got
    adapter = got["adapter"]
    assert adapter is not None and adapter["description"], adapter
    # This suite runs on lavapipe (plain); on a hardware adapter "auto" takes the fused build.
    software = adapter["isFallback"] or any(n in json.dumps(adapter).lower() for n in ("llvmpipe", "swiftshader"))
    assert got["target"] == ("webgpu" if software else "webgpu-fused"), got


def test_fused_build_missing_from_the_package_is_named() -> None:
    pkg = build_packages.ensure_package(MODEL, QUANT)  # the standard test package: no webgpu-fused
    got = generate(pkg, "--ids", "1,2,3", "--max-new", "1", "--webgpu-build", "fused")
    assert got.get("errorName") == "PackageCompatibilityError", got
    have = ", ".join(json.loads((pkg / "hearth-manifest.json").read_text())["targets"])
    assert '"webgpu-fused"' in got["error"] and f"targets: {have}" in got["error"], got
    assert "hearth compile --target webgpu-fused" in got["error"], got


def test_decode_fusion_option_with_the_fused_target_is_refused(tmp_path: Path) -> None:
    """--decode-fusion staged fuses the plain webgpu build too: with webgpu-fused the package would carry the
    fused build twice, so it is refused before any work."""
    with pytest.raises(CompileOptionError, match="drop --decode-fusion .* or --target webgpu-fused"):
        compile_package("no/such/model", QUANT, ["webgpu", "webgpu-fused"], tmp_path, decode_fusion="staged")
    assert not any(tmp_path.iterdir())
