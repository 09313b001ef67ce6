"""`hearth compile`: package layout, integrity, caching and bad input.

Uses a small random Llama made here (the trained test models are covered by
tests/test_compile_models.py); everything is a real TVM build for `llvm`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hearth.build.package import compile_package
from hearth.cli import main as hearth_main
from hearth.models import UnsupportedArchitectureError
from hearth.native import load_decoder
from hearth.quant import UnknownQuantizationError
from hearth.weights.manifest import IntegrityError, verify_package
from hearth.weights.reader import CheckpointError
from hearth.weights.source import ModelSourceError


def _write_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})
    )


# A random 2-layer Llama small enough to compile in seconds (test_hardening.py reuses it).
TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=176,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=256,
    max_position_embeddings=256,
    tie_word_embeddings=True,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "rand-llama"
    torch.manual_seed(0)
    cfg = LlamaConfig(**TINY_LLAMA)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    _write_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def package(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    return compile_package(str(checkpoint), "q4f32_1", ["llvm"], out).package_dir


def test_package_layout_and_manifest(package: Path) -> None:
    names = {p.name for p in package.iterdir()}
    assert {
        "mlc-chat-config.json",
        "tensor-cache.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "hearth-manifest.json",
        "rand-llama-q4f32_1-llvm.so",
    } <= names
    assert all(p.stat().st_size <= 32 * 2**20 for p in package.glob("params_shard_*.bin"))
    manifest = verify_package(package)
    listed = {f["path"] for f in manifest["files"]}
    assert listed == names - {"hearth-manifest.json"}
    assert manifest["quantization"] == "q4f32_1" and 4.5 < manifest["bits_per_param"] < 6
    assert manifest["tool"]["tvm"].startswith("0.27")
    cfg = json.loads((package / "mlc-chat-config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["vocab_size"] == 256 and cfg["chat_template"]
    assert [p["name"] for p in cfg["params"]][0] == "model.embed_tokens.q_weight"


def test_second_compile_is_cached(checkpoint: Path, package: Path) -> None:
    result = compile_package(str(checkpoint), "q4f32_1", ["llvm"], package.parents[1])
    assert result.cached and result.package_dir == package


def test_q4_package_runs_close_to_reference(checkpoint: Path, package: Path) -> None:
    hf = LlamaForCausalLM.from_pretrained(checkpoint).eval()
    ids = [int(i) for i in np.random.default_rng(1).integers(0, 256, 32)]
    decoder, _ = load_decoder(package)
    logits = decoder.prefill(ids).ravel()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0, -1].numpy()
    # 4-bit weights on a random model: same order of magnitude, strongly correlated.
    assert np.corrcoef(logits, ref)[0, 1] > 0.95


def test_tampered_package_is_refused(package: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    shard = copy / "params_shard_0.bin"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="params_shard_0.bin"):
        load_decoder(copy)


def _no_dist_left(out: Path) -> bool:
    return not out.exists() or not any(out.rglob("hearth-manifest.json"))


def test_unknown_quantization(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(UnknownQuantizationError, match="q4f16_1"):
        compile_package(str(checkpoint), "q3f16_7", ["llvm"], tmp_path / "dist")
    assert _no_dist_left(tmp_path / "dist")


def test_missing_config(checkpoint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "no-config"
    shutil.copytree(checkpoint, broken)
    (broken / "config.json").unlink()
    with pytest.raises(ModelSourceError, match="config.json"):
        compile_package(str(broken), "q4f32_1", ["llvm"], tmp_path / "dist")
    assert _no_dist_left(tmp_path / "dist")


def test_corrupt_safetensors(checkpoint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "corrupt"
    shutil.copytree(checkpoint, broken)
    st = broken / "model.safetensors"
    st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])  # truncated download
    with pytest.raises(CheckpointError, match="model.safetensors"):
        compile_package(str(broken), "q4f32_1", ["llvm"], tmp_path / "dist")
    assert _no_dist_left(tmp_path / "dist")


def test_unsupported_architecture(checkpoint: Path, tmp_path: Path) -> None:
    other = tmp_path / "gpt2ish"
    shutil.copytree(checkpoint, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitectureError, match="llama"):
        compile_package(str(other), "q4f32_1", ["llvm"], tmp_path / "dist")


def test_offline_hub_id_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelSourceError, match="no local copy"):
        compile_package("hearth-test/does-not-exist", "q4f32_1", ["llvm"], tmp_path / "dist")


def test_cli_reports_bad_input_without_traceback(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = hearth_main(["compile", str(checkpoint), "--quant", "q9", "--target", "llvm", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown quantization scheme 'q9'" in err and "Traceback" not in err


def test_sentencepiece_only_checkpoint_gets_tokenizer_json(tmp_path: Path) -> None:
    """A checkpoint with only tokenizer.model still yields the tokenizer.json the SDK reads,
    with the same ids transformers gives."""
    import sys

    from transformers import AutoTokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_test_models import ensure_test_model

    src = tmp_path / "sp-only"
    shutil.copytree(ensure_test_model("tiny-llama-sp"), src)
    (src / "tokenizer.json").unlink()
    pkg = compile_package(str(src), "q4f32_1", ["llvm"], tmp_path / "dist").package_dir
    assert (pkg / "tokenizer.json").is_file() and (pkg / "tokenizer.model").is_file()
    import tokenizers

    text = (src / "heldout.txt").read_text()[:2000]
    ours = tokenizers.Tokenizer.from_file(str(pkg / "tokenizer.json")).encode(text, add_special_tokens=False).ids
    assert ours == AutoTokenizer.from_pretrained(src)(text, add_special_tokens=False)["input_ids"]
    assert json.loads((pkg / "mlc-chat-config.json").read_text())["chat_template"]


def test_metadata_function_is_exported(package: Path) -> None:
    """MLC's `_metadata()` VM function returns the same params list as mlc-chat-config.json."""
    import tvm

    lib = tvm.runtime.load_module(str(package / "rand-llama-q4f32_1-llvm.so"))
    vm = tvm.relax.VirtualMachine(lib, tvm.cpu())
    meta = json.loads(str(vm["_metadata"]()))
    cfg = json.loads((package / "mlc-chat-config.json").read_text())
    assert meta["quantization"] == "q4f32_1" and meta["model_type"] == "llama"
    assert [p["name"] for p in meta["params"]] == [p["name"] for p in cfg["params"]]


def test_another_checkout_copies_from_the_package_store(checkpoint: Path, package: Path, tmp_path: Path) -> None:
    """A second dist/ (another clone, `make test` vs `make demo`) gets the package from the shared
    store by build key instead of compiling it again: identical files, no build time."""
    from hearth.build.package import package_store
    from hearth.cache import cache_root

    assert package_store().is_relative_to(cache_root())
    result = compile_package(str(checkpoint), "q4f32_1", ["llvm"], tmp_path / "other-dist")
    assert result.cached and result.package_dir == tmp_path / "other-dist" / "rand-llama" / "q4f32_1"
    assert verify_package(result.package_dir)["build_key"] == verify_package(package)["build_key"]
    ours = {p.name: p.read_bytes() for p in result.package_dir.iterdir()}
    assert ours == {p.name: p.read_bytes() for p in package.iterdir()}
