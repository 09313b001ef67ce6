#!/usr/bin/env python3
"""Build tiny Hugging Face checkpoints for Hearth's tests, offline and reproducibly.

The machine that runs the tests cannot reach a model hub, so the tests use checkpoints this
script makes itself from text that ships with Python (`pydoc_data.topics`). Each model is a
normal Hugging Face folder (config.json, generation_config.json, model.safetensors, tokenizer
files with a chat template, README.md) that `transformers.AutoModelForCausalLM` /
`AutoTokenizer` load like a hub checkpoint:

  tiny-llama-sp       random LlamaForCausalLM, sentencepiece BPE tokenizer.model (+ tokenizer.json)
  tiny-qwen2-bpe      random Qwen2ForCausalLM, byte-level BPE tokenizer.json (Qwen2Tokenizer)
  tiny-llama-trained  small LlamaForCausalLM trained for a fixed number of steps (~2 min on 2 CPU cores)

Models are cached in `cache_root()/test-models/<name>-<key>`; the key hashes the model's recipe
(config, tokenizer and training settings, chat template), the corpus, the held-out split rule,
BUILD_VERSION and the versions of the libraries that produce the files. A model is built in a
temporary sibling folder and renamed into place only when complete (`hearth.cache.atomic_dir`).

Usage:
  python scripts/make_test_models.py [NAME ... | --all] [--force] [--list]
  >>> from make_test_models import ensure_test_model; ensure_test_model("tiny-qwen2-bpe")

See docs/test-models.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from hearth.cache import atomic_dir, cache_root, content_key

# Bump when the build code changes what ends up in a model folder in a way the recipe does not
# capture (file layout, conversion logic, metadata format...). It is part of every cache key.
BUILD_VERSION = 1

# Held-out split: a topic is held out when sha256(HELDOUT_SALT + key) mod 100 < HELDOUT_PERCENT.
# The rule looks at each key alone, so it never depends on which other topics exist. The salt
# was picked (among v1..v11) because it holds out close to 10% of both topics and characters
# on Python 3.11 (9 of 79 topics, ~9% of the text).
HELDOUT_SALT = "hearth-test-models/heldout-v3:"
HELDOUT_PERCENT = 10

# Libraries whose version can change the files we write (tokenizer training, weight init,
# serialisation). Their versions go into every cache key.
KEY_LIBRARIES = ("torch", "transformers", "tokenizers", "sentencepiece", "safetensors")

# Qwen2's pre-tokenizer split (same as transformers' Qwen2Tokenizer, which rebuilds this pipeline).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Llama-2-chat's template (as published with meta-llama/Llama-2-7b-chat-hf), verbatim.
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

# ChatML as Qwen2.5-Instruct writes it (without the tool-calling branch); default system message.
QWEN25_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Plain ChatML (SmolLM2-style: no default system message).
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a test model. All of it goes into the cache key."""

    name: str
    description: str
    architecture: str  # "LlamaForCausalLM" | "Qwen2ForCausalLM"
    tokenizer_kind: str  # "sentencepiece-bpe" | "bytelevel-bpe"
    model: dict[str, Any]  # config kwargs (vocab_size and special ids are filled from the tokenizer)
    tokenizer: dict[str, Any]  # tokenizer training / special-token settings
    chat_template: str
    seed: int = 0
    train: dict[str, Any] | None = None  # None: random init only

    @property
    def trained(self) -> bool:
        return self.train is not None


MODELS: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="tiny-llama-sp",
            description="Random-initialised Llama (GQA, tied embeddings) with a sentencepiece BPE tokenizer.model.",
            architecture="LlamaForCausalLM",
            tokenizer_kind="sentencepiece-bpe",
            model=dict(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=176,
                max_position_embeddings=512,
                tie_word_embeddings=True,
                rope_theta=10000.0,
                rms_norm_eps=1e-6,
            ),
            tokenizer=dict(
                model_type="bpe",
                vocab_size=512,
                byte_fallback=True,
                unk_id=0,
                bos_id=1,
                eos_id=2,
                pad_id=-1,
                character_coverage=0.9995,
                add_dummy_prefix=True,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                split_digits=True,
                num_threads=1,
                shuffle_input_sentence=False,
                input_sentence_size=0,
                max_sentence_length=16384,
                unk_token="<unk>",
                bos_token="<s>",
                eos_token="</s>",
                add_bos_token=True,
            ),
            chat_template=LLAMA2_CHAT_TEMPLATE,
            seed=1234,
        ),
        Recipe(
            name="tiny-qwen2-bpe",
            description=(
                "Random-initialised Qwen2 (GQA, q/k/v bias, untied lm_head) with a byte-level BPE tokenizer.json."
            ),
            architecture="Qwen2ForCausalLM",
            tokenizer_kind="bytelevel-bpe",
            model=dict(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=176,
                max_position_embeddings=512,
                tie_word_embeddings=False,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                use_sliding_window=False,
            ),
            tokenizer=dict(
                vocab_size=1024,  # including the special tokens, which come last (as in Qwen2)
                min_frequency=2,
                special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                specials_first=False,
                pretokenizer="qwen2",
                normalizer="NFC",
                tokenizer_class="Qwen2Tokenizer",
                bos_token="<|endoftext|>",
                eos_token="<|im_end|>",
                pad_token="<|endoftext|>",
                unk_token=None,
                generation_eos=["<|im_end|>", "<|endoftext|>"],
                doc_separator="<|endoftext|>",
            ),
            chat_template=QWEN25_CHAT_TEMPLATE,
            seed=2345,
        ),
        Recipe(
            name="tiny-llama-trained",
            description=(
                "Small Llama (GQA, tied embeddings) trained briefly on the Python docs, so its held-out "
                "perplexity is far below uniform; byte-level BPE tokenizer.json, ChatML template."
            ),
            architecture="LlamaForCausalLM",
            tokenizer_kind="bytelevel-bpe",
            model=dict(
                hidden_size=128,
                num_hidden_layers=4,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=352,
                max_position_embeddings=256,
                tie_word_embeddings=True,
                rope_theta=10000.0,
                rms_norm_eps=1e-6,
            ),
            tokenizer=dict(
                vocab_size=2048,  # including the special tokens, which come first (as in SmolLM2)
                min_frequency=2,
                special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                specials_first=True,
                pretokenizer="qwen2",
                normalizer="NFC",
                tokenizer_class="PreTrainedTokenizerFast",
                bos_token="<|im_start|>",
                eos_token="<|im_end|>",
                pad_token="<|endoftext|>",
                unk_token="<|endoftext|>",
                generation_eos=["<|im_end|>", "<|endoftext|>"],
                doc_separator="<|endoftext|>",
            ),
            chat_template=CHATML_TEMPLATE,
            seed=3456,
            train=dict(
                # Fixed step count (deterministic); max_seconds is only a safety net for very slow
                # machines, and training.json records which one stopped training.
                steps=300,
                max_seconds=1200,
                seq_len=128,
                batch_size=16,
                lr=3e-3,
                min_lr_ratio=0.1,
                warmup_steps=20,
                betas=(0.9, 0.95),
                weight_decay=0.1,
                grad_clip=1.0,
                torch_threads=2,
                eval_seq_len=128,
                log_every=10,
            ),
        ),
    )
}


# ----------------------------------------------------------------------------------------------
# Corpus


def is_heldout(topic: str) -> bool:
    digest = hashlib.sha256((HELDOUT_SALT + topic).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELDOUT_PERCENT


def corpus_split() -> tuple[dict[str, str], dict[str, str]]:
    """(train, heldout): pydoc topic key -> help text, both in sorted key order."""
    from pydoc_data.topics import topics

    train = {k: topics[k] for k in sorted(topics) if not is_heldout(k)}
    heldout = {k: topics[k] for k in sorted(topics) if is_heldout(k)}
    return train, heldout


def join_docs(docs: dict[str, str]) -> str:
    """The text form of a split, as written to heldout.txt: documents separated by a blank line."""
    return "\n\n".join(text.strip("\n") for text in docs.values()) + "\n"


def corpus_fingerprint() -> str:
    from pydoc_data.topics import topics

    return content_key([part for k in sorted(topics) for part in (k, topics[k])])


# ----------------------------------------------------------------------------------------------
# Cache keys


def library_versions() -> dict[str, str]:
    out = {}
    for lib in KEY_LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "missing"
    return out


def recipe_json(recipe: Recipe) -> str:
    return json.dumps(dataclasses.asdict(recipe), sort_keys=True)


def recipe_key(recipe: Recipe) -> str:
    versions = library_versions()
    return content_key(
        [
            f"build-version={BUILD_VERSION}",
            recipe_json(recipe),
            f"corpus=pydoc_data.topics:{corpus_fingerprint()}",
            f"split={HELDOUT_SALT}:{HELDOUT_PERCENT}",
            *(f"{k}={v}" for k, v in sorted(versions.items())),
        ]
    )


def model_dir(name: str) -> Path:
    recipe = _recipe(name)
    return cache_root() / "test-models" / f"{name}-{recipe_key(recipe)}"


def _recipe(name: str) -> Recipe:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown test model {name!r}; known: {', '.join(MODELS)}") from None


MARKER = "hearth-test-model.json"


def is_built(path: Path) -> bool:
    return (path / MARKER).is_file()


@contextlib.contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    """Serialise builds of one model across processes (a second builder waits, then reuses)."""
    import fcntl

    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_test_model(name: str, force: bool = False, log: Any = None) -> Path:
    """The folder of test model `name`, built first if it is not cached (or if `force`).

    A cache hit costs a few milliseconds: it imports neither torch nor transformers.
    `log` is a rich Console (or None for a quiet stderr console).
    """
    recipe = _recipe(name)
    final = model_dir(name)
    if is_built(final) and not force:
        return final
    with _build_lock(final):
        if is_built(final) and not force:  # another process built it while we waited
            return final
        console = log or _console()
        console.print(f"[bold]building test model {name}[/] -> {final}", soft_wrap=True, highlight=False)
        t0 = time.perf_counter()
        with atomic_dir(final) as tmp:
            _build(recipe, final.name.rsplit("-", 1)[1], tmp, console, t0)
        console.print(f"built {name} in {time.perf_counter() - t0:.1f}s")
    return final


def _console():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


# ----------------------------------------------------------------------------------------------
# Build


def _build(recipe: Recipe, key: str, out: Path, console, t0: float) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Writing model shards" bars; rich shows our progress
    train_docs, heldout_docs = corpus_split()
    heldout_text = join_docs(heldout_docs)
    (out / "heldout.txt").write_text(heldout_text, encoding="utf-8")

    t = time.perf_counter()
    if recipe.tokenizer_kind == "sentencepiece-bpe":
        tok = _build_sentencepiece_tokenizer(recipe, train_docs, out)
    elif recipe.tokenizer_kind == "bytelevel-bpe":
        tok = _build_bytelevel_tokenizer(recipe, train_docs, out)
    else:
        raise ValueError(f"unknown tokenizer kind {recipe.tokenizer_kind!r}")
    tokenizer_seconds = time.perf_counter() - t
    console.print(f"  tokenizer: {recipe.tokenizer_kind}, {len(tok)} tokens ({tokenizer_seconds:.1f}s)")

    model = _make_model(recipe, tok)
    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"  model: {recipe.architecture}, {n_params:,} parameters")

    training = None
    if recipe.trained:
        training = _train(recipe, model, tok, train_docs, heldout_text, console)
        (out / "training.json").write_text(json.dumps(training, indent=2) + "\n")

    model.save_pretrained(out, safe_serialization=True)
    _write_readme(recipe, out, n_params, training)

    files = sorted(p.name for p in out.iterdir())
    meta = {
        "name": recipe.name,
        "key": key,
        "description": recipe.description,
        "architecture": recipe.architecture,
        "tokenizer_kind": recipe.tokenizer_kind,
        "tokenizer_class": json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"],
        "vocab_size": len(tok),
        "num_parameters": n_params,
        "trained": recipe.trained,
        "heldout_ppl": training["heldout_ppl"] if training else None,
        "uniform_ppl": len(tok),
        "special_tokens": {
            role: {"token": getattr(tok, role), "id": getattr(tok, f"{role}_id")}
            for role in ("bos_token", "eos_token", "unk_token", "pad_token")
            if getattr(tok, role) is not None
        },
        "corpus": {
            "source": "pydoc_data.topics.topics (Python standard library)",
            "python": platform.python_version(),
            "fingerprint": corpus_fingerprint(),
            "split_rule": f"heldout iff int(sha256('{HELDOUT_SALT}' + key)[:8 bytes]) % 100 < {HELDOUT_PERCENT}",
            "train_topics": len(train_docs),
            "heldout_topics": list(heldout_docs),
            "train_chars": sum(len(v) for v in train_docs.values()),
            "heldout_chars": len(heldout_text),
        },
        "versions": {"python": platform.python_version(), **library_versions()},
        "build_version": BUILD_VERSION,
        "build_seconds": round(time.perf_counter() - t0, 2),
        "tokenizer_seconds": round(tokenizer_seconds, 2),
        "recipe": json.loads(recipe_json(recipe)),
        "files": files + [MARKER],
    }
    # Written last: its presence marks a complete model (atomic_dir already guarantees it).
    (out / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
    # mkdtemp makes the folder 0700 and safetensors writes 0600; make it readable like a download.
    out.chmod(0o755)
    for p in out.iterdir():
        p.chmod(0o644)


def _save_tokenizer(tok, out: Path, tokenizer_class: str | None = None, extra: dict | None = None) -> None:
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json (the older,
    # most widely read layout) instead of a separate chat_template.jinja.
    tok.save_pretrained(out, save_jinja_files=False)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    if tokenizer_class:
        cfg["tokenizer_class"] = tokenizer_class
    cfg.update(extra or {})
    cfg["chat_template"] = tok.chat_template
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def _reload_tokenizer(out: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(out)


def _build_sentencepiece_tokenizer(recipe: Recipe, train_docs: dict[str, str], out: Path):
    """Train a sentencepiece BPE model; also express it as a transformers LlamaTokenizer.

    transformers can only convert tokenizer.model itself when protobuf is installed (it is not a
    Hearth dependency), so we build the equivalent tokenizers-BPE (vocab + merges, byte
    fallback, Metaspace) from the sentencepiece model and let transformers write tokenizer.json
    next to tokenizer.model. Both encode identically except for text that starts with
    whitespace (sentencepiece always adds the dummy "▁" prefix; transformers' Metaspace skips
    it when the text already starts with a space) - the same as real Llama-2 under
    transformers 5. The build checks the two agree on every held-out paragraph.
    """
    import io

    import sentencepiece as spm
    from transformers import LlamaTokenizer

    s = dict(recipe.tokenizer)
    special = {k: s.pop(k) for k in ("unk_token", "bos_token", "eos_token", "add_bos_token")}
    lines = [line for text in train_docs.values() for line in text.splitlines() if line.strip()]
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=proto, minloglevel=2, **s)
    proto_bytes = proto.getvalue()
    (out / "tokenizer.model").write_bytes(proto_bytes)

    sp = spm.SentencePieceProcessor(model_proto=proto_bytes)
    n = sp.get_piece_size()
    pieces = [sp.id_to_piece(i) for i in range(n)]
    for tid, role in ((s["unk_id"], "unk_token"), (s["bos_id"], "bos_token"), (s["eos_id"], "eos_token")):
        assert pieces[tid] == special[role], (tid, pieces[tid], special[role])
    vocab = {p: i for i, p in enumerate(pieces)}
    # BPE merges in sentencepiece order: a piece with a higher score (lower id) merges first;
    # every split of a piece into two pieces of the vocab is a merge that yields it.
    merges: list[tuple[str, str]] = []
    for i, piece in enumerate(pieces):
        if sp.is_byte(i) or sp.is_control(i) or sp.is_unknown(i) or len(piece) < 2:
            continue
        splits = [
            (vocab[piece[:j]], vocab[piece[j:]], j)
            for j in range(1, len(piece))
            if piece[:j] in vocab and piece[j:] in vocab
        ]
        merges += [(piece[:j], piece[j:]) for _, _, j in sorted(splits)]

    tok = LlamaTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=special["unk_token"],
        bos_token=special["bos_token"],
        eos_token=special["eos_token"],
        add_bos_token=special["add_bos_token"],
        add_eos_token=False,
        legacy=False,
        add_prefix_space=s["add_dummy_prefix"],
    )
    tok.chat_template = recipe.chat_template
    # Spelled out for readers other than transformers 5 (older transformers, JS tokenizers).
    _save_tokenizer(
        tok, out, extra={"add_bos_token": special["add_bos_token"], "add_eos_token": False, "legacy": False}
    )
    tok = _reload_tokenizer(out)
    assert len(tok) == n, (len(tok), n)

    # Self-check: transformers' tokenizer == sentencepiece on held-out paragraphs, and round-trips.
    _, heldout = corpus_split()
    for text in heldout.values():
        for para in text.split("\n\n"):
            para = para.lstrip()
            if not para:
                continue
            ids = tok(para, add_special_tokens=False)["input_ids"]
            if ids != sp.encode(para):
                raise AssertionError(f"tokenizer.json and tokenizer.model disagree on {para[:60]!r}")
            if tok.decode(ids) != para:
                raise AssertionError(f"tokenizer does not round-trip {para[:60]!r}")
    return tok


def _build_bytelevel_tokenizer(recipe: Recipe, train_docs: dict[str, str], out: Path):
    """Train a byte-level BPE tokenizer.json with `tokenizers`, Qwen2's pre-tokenizer pipeline."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    s = recipe.tokenizer
    assert s["pretokenizer"] == "qwen2" and s["normalizer"] == "NFC"
    specials = list(s["special_tokens"])
    backend = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    base_size = s["vocab_size"] - (0 if s["specials_first"] else len(specials))
    trainer = trainers.BpeTrainer(
        vocab_size=base_size,
        min_frequency=s["min_frequency"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in specials] if s["specials_first"] else [],
    )
    backend.train_from_iterator(list(train_docs.values()), trainer=trainer)
    if not s["specials_first"]:
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    size = backend.get_vocab_size(with_added_tokens=True)
    if size != s["vocab_size"]:
        raise RuntimeError(f"trained tokenizer has {size} tokens, recipe asks for {s['vocab_size']}")

    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=s["bos_token"],
        eos_token=s["eos_token"],
        pad_token=s["pad_token"],
        unk_token=s["unk_token"],
        additional_special_tokens=[
            t for t in specials if t not in {s["bos_token"], s["eos_token"], s["pad_token"], s["unk_token"]}
        ],
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = recipe.chat_template
    _save_tokenizer(tok, out, tokenizer_class=s["tokenizer_class"])
    tok = _reload_tokenizer(out)
    assert len(tok) == s["vocab_size"], (len(tok), s["vocab_size"])

    # Self-check: the class transformers picks encodes like the raw tokenizer.json, round-trips.
    raw = Tokenizer.from_file(str(out / "tokenizer.json"))
    _, heldout = corpus_split()
    for text in heldout.values():
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if ids != raw.encode(text, add_special_tokens=False).ids:
            raise AssertionError(f"{type(tok).__name__} and tokenizer.json disagree on held-out text")
        if tok.decode(ids) != text:
            raise AssertionError("byte-level tokenizer does not round-trip held-out text")
    return tok


def _make_model(recipe: Recipe, tok):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {"LlamaForCausalLM": (LlamaConfig, LlamaForCausalLM), "Qwen2ForCausalLM": (Qwen2Config, Qwen2ForCausalLM)}
    config_cls, model_cls = classes[recipe.architecture]
    gen_eos = [tok.convert_tokens_to_ids(t) for t in recipe.tokenizer.get("generation_eos", [])] or [tok.eos_token_id]
    config = config_cls(
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **recipe.model,
    )
    torch.manual_seed(recipe.seed)
    model = model_cls(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=gen_eos if len(gen_eos) > 1 else gen_eos[0],
        pad_token_id=tok.pad_token_id,
        do_sample=False,
        max_length=config.max_position_embeddings,
    )
    return model


# ----------------------------------------------------------------------------------------------
# Training (tiny-llama-trained)


def heldout_perplexity(model, token_ids: list[int], seq_len: int, batch_size: int = 16) -> tuple[float, int]:
    """exp(mean NLL) over non-overlapping windows of `seq_len` tokens (the first token of each
    window is context only). Returns (perplexity, number of predicted tokens)."""
    import torch
    import torch.nn.functional as F

    ids = torch.tensor(token_ids, dtype=torch.long)
    windows = [ids[i : i + seq_len] for i in range(0, len(ids) - 1, seq_len)]
    windows = [w for w in windows if len(w) >= 2]
    total_nll, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        full = [w for w in windows if len(w) == seq_len]
        rest = [w for w in windows if len(w) != seq_len]
        batches = [torch.stack(full[i : i + batch_size]) for i in range(0, len(full), batch_size)]
        batches += [w[None] for w in rest]
        for x in batches:
            logits = model(input_ids=x).logits.float()
            nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
            total_nll += nll.item()
            count += x[:, 1:].numel()
    model.train(was_training)
    return math.exp(total_nll / count), count


def _unigram_perplexity(train_ids: list[int], eval_ids: list[int], vocab: int) -> float:
    """Add-one smoothed unigram baseline, for scale."""
    from collections import Counter

    counts = Counter(train_ids)
    total = len(train_ids) + vocab
    nll = -sum(math.log((counts.get(t, 0) + 1) / total) for t in eval_ids)
    return math.exp(nll / len(eval_ids))


def _train(recipe: Recipe, model, tok, train_docs: dict[str, str], heldout_text: str, console) -> dict:
    import torch
    import torch.nn.functional as F
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cfg = recipe.train
    assert cfg is not None
    torch.set_num_threads(cfg["torch_threads"])
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)

    sep = tok.convert_tokens_to_ids(recipe.tokenizer["doc_separator"])
    stream: list[int] = []
    for text in train_docs.values():
        stream += tok(text, add_special_tokens=False)["input_ids"] + [sep]
    data = torch.tensor(stream, dtype=torch.long)
    heldout_ids = tok(heldout_text, add_special_tokens=False)["input_ids"]

    seq, bsz, steps = cfg["seq_len"], cfg["batch_size"], cfg["steps"]
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["lr"],
        betas=tuple(cfg["betas"]),
    )

    def lr_at(step: int) -> float:
        if step < cfg["warmup_steps"]:
            return cfg["lr"] * (step + 1) / cfg["warmup_steps"]
        progress = (step - cfg["warmup_steps"]) / max(1, steps - cfg["warmup_steps"])
        lo = cfg["min_lr_ratio"]
        return cfg["lr"] * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * progress)))

    init_ppl, _ = heldout_perplexity(model, heldout_ids, cfg["eval_seq_len"])
    model.train()
    losses: list[float] = []
    curve: dict[str, float] = {}
    stopped_by = "steps"
    t0 = time.perf_counter()
    with Progress(
        TextColumn("  training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("train", total=steps, loss="-")
        for step in range(steps):
            if time.perf_counter() - t0 > cfg["max_seconds"]:
                stopped_by = "max_seconds"
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            starts = torch.randint(0, len(data) - seq - 1, (bsz,), generator=gen)
            batch = torch.stack([data[s : s + seq + 1] for s in starts.tolist()])
            logits = model(input_ids=batch[:, :-1]).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            losses.append(loss.item())
            if step % cfg["log_every"] == 0 or step == steps - 1:
                curve[str(step)] = round(losses[-1], 4)
            progress.update(task, advance=1, loss=f"{losses[-1]:.3f}")
    train_seconds = time.perf_counter() - t0
    model.eval()

    ppl, n_eval = heldout_perplexity(model, heldout_ids, cfg["eval_seq_len"])
    unigram = _unigram_perplexity(stream, heldout_ids, len(tok))
    tail = losses[-cfg["log_every"] :]
    result = {
        "steps": len(losses),
        "steps_planned": steps,
        "stopped_by": stopped_by,
        "train_seconds": round(train_seconds, 1),
        "seconds_per_step": round(train_seconds / max(1, len(losses)), 3),
        "torch_threads": cfg["torch_threads"],
        "tokens_per_step": seq * bsz,
        "train_tokens": len(stream),
        "epochs": round(len(losses) * seq * bsz / len(stream), 2),
        "loss_start": round(losses[0], 4),
        "loss_end": round(sum(tail) / len(tail), 4),
        "loss_end_note": f"mean of the last {len(tail)} steps",
        "loss_curve": curve,  # step -> loss of that step's batch
        "heldout_tokens": n_eval,
        "heldout_eval_seq_len": cfg["eval_seq_len"],
        "heldout_ppl_init": round(init_ppl, 2),
        "heldout_ppl": round(ppl, 3),
        "heldout_unigram_ppl": round(unigram, 2),
        "uniform_ppl": len(tok),
        "deterministic": stopped_by == "steps",
    }
    console.print(
        f"  trained {len(losses)} steps in {train_seconds:.0f}s: "
        f"loss {result['loss_start']:.2f} -> {result['loss_end']:.2f}, "
        f"held-out ppl {ppl:.1f} (init {init_ppl:.0f}, unigram {unigram:.0f}, uniform {len(tok)})"
    )
    if stopped_by != "steps":
        console.print(
            f"  [yellow]warning: stopped by max_seconds={cfg['max_seconds']} before {steps} steps; "
            "weights are not reproducible"
        )
    return result


def _write_readme(recipe: Recipe, out: Path, n_params: int, training: dict | None) -> None:
    trained = (
        f"It was trained for {training['steps']} steps on the training split; held-out perplexity "
        f"{training['heldout_ppl']:.1f} (uniform: {training['uniform_ppl']}). See training.json."
        if training
        else "Its weights are random (seeded); it produces gibberish by design."
    )
    (out / "README.md").write_text(
        f"""---
license: apache-2.0
library_name: transformers
tags:
- hearth-test-model
- generated
---
# {recipe.name} (generated test model)

This checkpoint was generated by `scripts/make_test_models.py` in the Hearth repository for
offline tests. It is not a useful language model. {recipe.description}

- architecture: {recipe.architecture}, {n_params:,} parameters
- tokenizer: {recipe.tokenizer_kind}
- {trained}

License: the generated weights, tokenizer and metadata are released under Apache-2.0.
The tokenizer and (for trained models) the weights were derived from the Python documentation
shipped with CPython (`pydoc_data.topics`); `heldout.txt` is an excerpt of that documentation,
Copyright Python Software Foundation, licensed under the PSF License Version 2.

Recipe and provenance: `hearth-test-model.json`. See also docs/test-models.md in the repository.
""",
        encoding="utf-8",
    )


# ----------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"models to build: {', '.join(MODELS)} (default: all)")
    parser.add_argument("--all", action="store_true", help="build every model")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument(
        "--list", action="store_true", help="list models, their cache folders and whether they are built"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    names = list(MODELS) if args.all or not args.names else args.names
    if args.list:
        for n in names:
            path = model_dir(n)
            print(f"{n}\t{'built' if is_built(path) else 'missing'}\t{path}")
        return 0
    console = _console()
    for n in names:
        print(ensure_test_model(n, force=args.force, log=console), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
