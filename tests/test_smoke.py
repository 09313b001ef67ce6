"""The foundation's smoke path: Linear-SiLU-Linear compiled by TVM, run for real.

- natively (llvm) in-process, against a float64 numpy reference;
- as a WebGPU wasm in Node on Dawn (lavapipe: real WGSL on a Vulkan driver);
- as the same wasm in headless Chromium (SwiftShader) inside a module Worker.
"""

from __future__ import annotations

import pytest

from conftest import REPO, run_json
from hearth.build.smoke import CASES, cached_case, run_native


@pytest.mark.parametrize("name", list(CASES))
def test_native_llvm_matches_numpy(name: str) -> None:
    result = run_native(cached_case(name, target="llvm"))
    assert result["ok"], result


@pytest.mark.parametrize("name", list(CASES))
def test_webgpu_node_dawn(name: str) -> None:
    case = cached_case(name, target="webgpu")
    result = run_json(["node", str(REPO / "sdk" / "scripts" / "run-case.mjs"), str(case)])
    assert "skipped" not in result, f"lavapipe 25 has shader-f16; nothing may be skipped in Node: {result}"
    assert result["adapter"]["vendor"], result
    assert result["ok"], f"{name}: max abs err {result['maxAbsErr']} > {CASES[name].tolerance}"


@pytest.mark.parametrize("name", list(CASES))
def test_webgpu_chromium_worker(name: str) -> None:
    """f32 cases must run and match. An f16 case must run where the adapter has shader-f16 and, where it
    has not (SwiftShader), be refused by name before any f16 shader is created: that refusal is the
    behaviour under test there, not a skip."""
    case = cached_case(name, target="webgpu")
    result = run_json(["node", str(REPO / "tests" / "browser" / "run-case.mjs"), str(case)])
    if CASES[name].requires_f16 and not result["adapter"]["shaderF16"]:
        assert result.get("skipped") == "adapter has no shader-f16", result
        assert "ok" not in result, f"an f16 case ran on an adapter without shader-f16: {result}"
        return
    assert "skipped" not in result, result
    assert result["ok"], f"{name}: max abs err {result['maxAbsErr']} > {CASES[name].tolerance}"
