"""Tests for scripts/make_test_models.py: the tiny offline checkpoints Hearth's tests compile.

The first run builds the models into the cache (a few seconds for the random ones, a few
minutes for tiny-llama-trained on a busy 2-core machine); later runs are cache hits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import make_test_models as mtm  # noqa: E402

NAMES = list(mtm.MODELS)
CONVERSATION = [
    {"role": "user", "content": "What is a list?"},
    {"role": "assistant", "content": "A mutable sequence."},
]
EXPECTED_CHAT = {
    "tiny-llama-sp": "<s>[INST] What is a list? [/INST] A mutable sequence. </s>",
    "tiny-qwen2-bpe": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is a list?<|im_end|>\n"
        "<|im_start|>assistant\nA mutable sequence.<|im_end|>\n"
    ),
    "tiny-llama-trained": (
        "<|im_start|>user\nWhat is a list?<|im_end|>\n<|im_start|>assistant\nA mutable sequence.<|im_end|>\n"
    ),
}
# token -> id, for every special token of each model
EXPECTED_SPECIALS = {
    "tiny-llama-sp": {"<unk>": 0, "<s>": 1, "</s>": 2},
    "tiny-qwen2-bpe": {"<|endoftext|>": 1021, "<|im_start|>": 1022, "<|im_end|>": 1023},
    "tiny-llama-trained": {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2},
}
EXPECTED_BOS_EOS = {
    "tiny-llama-sp": ("<s>", "</s>"),
    "tiny-qwen2-bpe": ("<|endoftext|>", "<|im_end|>"),
    "tiny-llama-trained": ("<|im_start|>", "<|im_end|>"),
}
PPL_TOKENS = 4096  # held-out tokens scored in the perplexity tests (keeps them to a few seconds)


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    return {name: mtm.ensure_test_model(name) for name in NAMES}


_loaded: dict[str, tuple] = {}


def load(built: dict[str, Path], name: str):
    """(model, tokenizer, folder), loaded once per test session."""
    if name not in _loaded:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = built[name]
        model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
        assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
        _loaded[name] = (model.eval(), AutoTokenizer.from_pretrained(path), path)
    return _loaded[name]


def heldout_ppl(model, tok, path: Path, limit: int = PPL_TOKENS, seq_len: int = 128) -> tuple[float, int]:
    """Perplexity over the first `limit` tokens of heldout.txt, in non-overlapping windows."""
    import torch
    import torch.nn.functional as F

    ids = tok((path / "heldout.txt").read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"][:limit]
    assert len(ids) == limit, f"heldout.txt has only {len(ids)} tokens"
    x = torch.tensor(ids[: len(ids) // seq_len * seq_len]).view(-1, seq_len)
    with torch.no_grad():
        logits = model(input_ids=x).logits.float()
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    return math.exp(nll.item()), x[:, 1:].numel()


# ----------------------------------------------------------------------------------------------
# Recipes, keys, corpus (no model needed)


def test_models_are_the_three_documented_ones() -> None:
    assert NAMES == ["tiny-llama-sp", "tiny-qwen2-bpe", "tiny-llama-trained"]


def test_recipe_key_changes_with_any_setting() -> None:
    recipe = mtm.MODELS["tiny-llama-sp"]
    key = mtm.recipe_key(recipe)
    assert mtm.recipe_key(recipe) == key  # stable
    assert mtm.recipe_key(dataclasses.replace(recipe, seed=recipe.seed + 1)) != key
    assert mtm.recipe_key(dataclasses.replace(recipe, model={**recipe.model, "hidden_size": 32})) != key
    assert mtm.recipe_key(dataclasses.replace(recipe, tokenizer={**recipe.tokenizer, "vocab_size": 500})) != key
    assert mtm.recipe_key(dataclasses.replace(recipe, chat_template="x")) != key
    trained = mtm.MODELS["tiny-llama-trained"]
    assert mtm.recipe_key(dataclasses.replace(trained, train={**trained.train, "steps": 1})) != mtm.recipe_key(trained)
    assert len({mtm.recipe_key(r) for r in mtm.MODELS.values()}) == len(mtm.MODELS)


def test_heldout_split_is_stable_disjoint_and_about_ten_percent() -> None:
    from pydoc_data.topics import topics

    train, heldout = mtm.corpus_split()
    assert set(train).isdisjoint(heldout)
    assert set(train) | set(heldout) == set(topics)
    assert 0.05 <= len(heldout) / len(topics) <= 0.2
    chars = sum(len(v) for v in heldout.values()) / sum(len(v) for v in topics.values())
    assert 0.04 <= chars <= 0.2
    # The rule depends on each key alone (pinned, so a changed rule is noticed).
    assert mtm.is_heldout("with") and mtm.is_heldout("global")
    assert not mtm.is_heldout("if") and not mtm.is_heldout("class")
    assert mtm.corpus_split() == (train, heldout)


def test_failed_build_caches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_CACHE", str(tmp_path))
    bad = dataclasses.replace(mtm.MODELS["tiny-llama-sp"], name="broken", tokenizer_kind="no-such-kind")
    monkeypatch.setitem(mtm.MODELS, "broken", bad)
    with pytest.raises(ValueError, match="no-such-kind"):
        mtm.ensure_test_model("broken")
    leftovers = [p.name for p in (tmp_path / "test-models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
    assert not mtm.is_built(mtm.model_dir("broken"))


def test_unknown_model_name() -> None:
    with pytest.raises(KeyError, match="tiny-llama-sp"):
        mtm.ensure_test_model("no-such-model")


# ----------------------------------------------------------------------------------------------
# The built models


def test_second_call_is_a_fast_cache_hit(built: dict[str, Path]) -> None:
    for name, path in built.items():
        t = time.perf_counter()
        again = mtm.ensure_test_model(name)
        assert again == path
        assert time.perf_counter() - t < 0.5, f"{name}: cache hit took {time.perf_counter() - t:.2f}s"
        assert path.parent == mtm.cache_root() / "test-models"
        assert path.name == f"{name}-{mtm.recipe_key(mtm.MODELS[name])}"


def test_cache_hit_does_not_import_torch_and_cli_prints_dirs(built: dict[str, Path]) -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(SCRIPTS)!r}); import make_test_models as m; "
        "paths = [str(m.ensure_test_model(n)) for n in m.MODELS]; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "make_test_models.py"), "--all"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(built[n]) for n in NAMES]


@pytest.mark.parametrize("name", NAMES)
def test_folder_layout_and_metadata(built: dict[str, Path], name: str) -> None:
    path = built[name]
    recipe = mtm.MODELS[name]
    for f in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "heldout.txt",
        "hearth-test-model.json",
    ):
        assert (path / f).is_file(), f"{name} lacks {f}"
    if recipe.tokenizer_kind == "sentencepiece-bpe":
        assert (path / "tokenizer.model").is_file()
    meta = json.loads((path / "hearth-test-model.json").read_text())
    assert meta["name"] == name
    assert meta["key"] == mtm.recipe_key(recipe) == path.name.rsplit("-", 1)[1]
    assert meta["tokenizer_kind"] == recipe.tokenizer_kind
    assert set(meta["corpus"]["heldout_topics"]) == set(mtm.corpus_split()[1])
    # Hearth reads the license from README front matter (hearth.weights.source.ModelSource.license).
    m = re.search(r"^license:\s*(\S+)", (path / "README.md").read_text(), re.MULTILINE)
    assert m and m.group(1) == "apache-2.0"
    assert (path / "heldout.txt").read_text(encoding="utf-8") == mtm.join_docs(mtm.corpus_split()[1])
    tok_cfg = json.loads((path / "tokenizer_config.json").read_text())
    assert tok_cfg["chat_template"] == recipe.chat_template
    assert (tok_cfg["bos_token"], tok_cfg["eos_token"]) == EXPECTED_BOS_EOS[name]
    if recipe.trained:
        assert meta["heldout_ppl"] == json.loads((path / "training.json").read_text())["heldout_ppl"]
    else:
        assert meta["heldout_ppl"] is None and not (path / "training.json").exists()


@pytest.mark.parametrize("name", NAMES)
def test_loads_with_auto_classes_and_runs(built: dict[str, Path], name: str) -> None:
    import torch
    from transformers import PreTrainedTokenizerFast

    model, tok, _ = load(built, name)
    assert type(model).__name__ == mtm.MODELS[name].architecture
    assert isinstance(tok, PreTrainedTokenizerFast)
    ids = tok("def f(x):\n    return x + 1", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()
    assert next(model.parameters()).dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_vocab_sizes_agree(built: dict[str, Path], name: str) -> None:
    model, tok, _ = load(built, name)
    vocab = model.config.vocab_size
    assert len(tok) == vocab == mtm.MODELS[name].tokenizer["vocab_size"]
    assert model.get_input_embeddings().weight.shape[0] == vocab
    assert model.get_output_embeddings().weight.shape[0] == vocab
    assert max(tok.get_vocab().values()) == vocab - 1
    assert sorted(tok.get_vocab().values()) == list(range(vocab))  # no gaps, no duplicates


@pytest.mark.parametrize("name", NAMES)
def test_special_token_ids(built: dict[str, Path], name: str) -> None:
    model, tok, _ = load(built, name)
    for token, tid in EXPECTED_SPECIALS[name].items():
        assert tok.convert_tokens_to_ids(token) == tid
        assert tok(token, add_special_tokens=False)["input_ids"] == [tid], f"{token} is not atomic in text"
        assert tid < model.config.vocab_size
    bos, eos = EXPECTED_BOS_EOS[name]
    assert (tok.bos_token, tok.eos_token) == (bos, eos)
    assert model.config.bos_token_id == tok.bos_token_id == EXPECTED_SPECIALS[name][bos]
    assert model.config.eos_token_id == tok.eos_token_id == EXPECTED_SPECIALS[name][eos]
    gen_eos = model.generation_config.eos_token_id
    assert tok.eos_token_id in (gen_eos if isinstance(gen_eos, list) else [gen_eos])
    # Only the Llama-2-style tokenizer adds BOS by itself (as Llama-2 does).
    ids = tok("hello")["input_ids"]
    assert (ids[0] == tok.bos_token_id) == (name == "tiny-llama-sp")
    assert tok.eos_token_id not in ids


@pytest.mark.parametrize("name", NAMES)
def test_chat_template_renders_two_messages(built: dict[str, Path], name: str) -> None:
    _, tok, _ = load(built, name)
    text = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert text == EXPECTED_CHAT[name]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    if "<|im_start|>" in text:
        assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == text.count("<|im_start|>")
        prompt = tok.apply_chat_template(CONVERSATION[:1], tokenize=False, add_generation_prompt=True)
        assert prompt.endswith("<|im_start|>assistant\n")
    else:
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id


@pytest.mark.parametrize("name", NAMES)
def test_gqa_and_architecture_details(built: dict[str, Path], name: str) -> None:
    from safetensors import safe_open

    model, _, path = load(built, name)
    cfg = model.config
    recipe = mtm.MODELS[name]
    assert cfg.num_key_value_heads < cfg.num_attention_heads
    for key, value in recipe.model.items():
        if key != "rope_theta":
            assert getattr(cfg, key) == value, key
    assert cfg.rope_parameters["rope_theta"] == recipe.model["rope_theta"]
    attn = model.model.layers[0].self_attn
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    assert attn.k_proj.weight.shape == (cfg.num_key_value_heads * head_dim, cfg.hidden_size)
    assert attn.q_proj.weight.shape == (cfg.num_attention_heads * head_dim, cfg.hidden_size)
    has_bias = name == "tiny-qwen2-bpe"
    assert all((getattr(attn, p).bias is not None) == has_bias for p in ("q_proj", "k_proj", "v_proj"))
    assert attn.o_proj.bias is None
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    tied = recipe.model["tie_word_embeddings"]
    assert ("lm_head.weight" not in keys) == tied
    assert (model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()) == tied


def test_sentencepiece_model_matches_tokenizer_json(built: dict[str, Path]) -> None:
    import sentencepiece as spm

    _, tok, path = load(built, "tiny-llama-sp")
    sp = spm.SentencePieceProcessor(model_file=str(path / "tokenizer.model"))
    assert sp.get_piece_size() == len(tok)
    assert [sp.id_to_piece(i) for i in range(len(tok))] == tok.convert_ids_to_tokens(list(range(len(tok))))
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    samples = [p.lstrip() for p in (path / "heldout.txt").read_text().split("\n\n") if p.strip()]
    samples += ["Hello world, ünïcødé 🙂 and 12345", "x = {'a': [1, 2]}\n\tprint(x)"]
    assert len(samples) > 50
    for text in samples:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids == sp.encode(text), text[:60]
        assert tok.decode(ids) == text == sp.decode(ids)
    # byte fallback: a character surely absent from the vocabulary becomes UTF-8 byte tokens
    assert tok.convert_ids_to_tokens(tok("\u4e2d", add_special_tokens=False)["input_ids"])[-3:] == [
        "<0xE4>",
        "<0xB8>",
        "<0xAD>",
    ]


@pytest.mark.parametrize("name", ["tiny-qwen2-bpe", "tiny-llama-trained"])
def test_bytelevel_tokenizer_json_matches_transformers(built: dict[str, Path], name: str) -> None:
    from tokenizers import Tokenizer

    _, tok, path = load(built, name)
    raw = Tokenizer.from_file(str(path / "tokenizer.json"))
    assert raw.get_vocab_size(with_added_tokens=True) == len(tok)
    for text in [(path / "heldout.txt").read_text(), "Hello world, ünïcødé 🙂\r\n\tx  = 1"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert ids == raw.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids) == text


def test_trained_model_learned_the_heldout_text(built: dict[str, Path]) -> None:
    model, tok, path = load(built, "tiny-llama-trained")
    ppl, n = heldout_ppl(model, tok, path)
    uniform = model.config.vocab_size
    training = json.loads((path / "training.json").read_text())
    assert n > 4000
    assert ppl < 0.5 * uniform, f"held-out ppl {ppl:.1f} vs uniform {uniform}"
    # Stronger: better than a unigram model of the training split (which knows token frequencies).
    assert ppl < training["heldout_unigram_ppl"], (ppl, training["heldout_unigram_ppl"])
    assert training["loss_end"] < training["loss_start"] - 1.0


def test_random_model_is_near_uniform(built: dict[str, Path]) -> None:
    """Negative control: the same measurement on an untrained model stays near uniform."""
    model, tok, path = load(built, "tiny-qwen2-bpe")
    ppl, _ = heldout_ppl(model, tok, path, limit=2048)
    assert ppl > 0.5 * model.config.vocab_size
