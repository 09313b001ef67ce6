"""mlc-chat-config.json and the tokenizer files, following MLC's package conventions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..models import DecoderConfig
from ..quant import QuantScheme
from .conv_template import mlc_conv_template, tokenizer_info

TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
]
# Sampling defaults when generation_config.json says nothing (MLC's defaults).
SAMPLING_DEFAULTS = {
    "temperature": 0.7,
    "top_p": 0.95,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repetition_penalty": 1.0,
}


def copy_tokenizer(src: Path, dst: Path) -> list[str]:
    files = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not any(name in files for name in ("tokenizer.json", "tokenizer.model", "vocab.txt")):
        raise FileNotFoundError(
            f"{src} has no tokenizer (tokenizer.json, tokenizer.model or vocab.txt); the package needs one"
        )
    for name in files:
        shutil.copyfile(src / name, dst / name)
    if "tokenizer.json" not in files:
        _write_tokenizer_json(src, dst)
        files.append("tokenizer.json")
    return files


def _write_tokenizer_json(src: Path, dst: Path) -> None:
    """The SDK reads only tokenizer.json; derive it from tokenizer.model / vocab.txt the way
    transformers does (its slow -> fast converters), so ids stay identical."""
    import tempfile

    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(src)
    except Exception as e:  # noqa: BLE001 - converters raise many types
        raise FileNotFoundError(
            f"{src} has no tokenizer.json and transformers could not convert its tokenizer ({e})"
        ) from e
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        if not (Path(tmp) / "tokenizer.json").is_file():
            raise FileNotFoundError(f"{src}: transformers did not produce a tokenizer.json for {type(tok).__name__}")
        shutil.copyfile(Path(tmp) / "tokenizer.json", dst / "tokenizer.json")


def read_chat_template(src: Path, tokenizer_config: dict[str, Any]) -> str | None:
    """transformers >= 4.43 may keep the template in chat_template.jinja instead of the config."""
    if (src / "chat_template.jinja").is_file():
        return (src / "chat_template.jinja").read_text()
    template = tokenizer_config.get("chat_template")
    return template if isinstance(template, str) else None


def _token_id(value: Any) -> int | list[int] | None:
    return value if isinstance(value, (int, list)) else None


def chat_config(
    hf_config: dict[str, Any],
    config: DecoderConfig,
    scheme: QuantScheme,
    src: Path,
    tokenizer_files: list[str],
    model_libs: dict[str, str],
) -> dict[str, Any]:
    tok_cfg = (
        json.loads((src / "tokenizer_config.json").read_text()) if (src / "tokenizer_config.json").is_file() else {}
    )
    gen_file = src / "generation_config.json"
    gen = json.loads(gen_file.read_text()) if gen_file.is_file() else {}
    sampling = {k: gen.get(k, v) for k, v in SAMPLING_DEFAULTS.items()}
    eos = _token_id(gen.get("eos_token_id", hf_config.get("eos_token_id")))
    template = read_chat_template(src, tok_cfg)
    tok_json = json.loads((src / "tokenizer.json").read_text()) if (src / "tokenizer.json").is_file() else None
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    return {
        "version": "0.1.0",
        "model_type": config.model_type,
        "model_task": "chat",
        "quantization": scheme.name,
        "model_config": hf_config,
        "vocab_size": config.vocab_size,
        "context_window_size": config.context_window_size,
        "sliding_window_size": -1,
        "prefill_chunk_size": config.prefill_chunk_size,
        "attention_sink_size": -1,
        "tensor_parallel_shards": 1,
        "max_batch_size": config.max_batch_size,
        **sampling,
        "bos_token_id": _token_id(gen.get("bos_token_id", hf_config.get("bos_token_id"))),
        "eos_token_id": eos,
        "pad_token_id": _token_id(hf_config.get("pad_token_id")),
        "tokenizer_files": tokenizer_files,
        # Hearth's SDK renders the HF Jinja chat template itself (@huggingface/jinja); null when
        # the checkpoint has none. WebLLM needs an MLC conv_template instead: written when one
        # provably renders the same prompts (ChatML models), else null (see conv_template.py).
        "chat_template": template,
        "conv_template": mlc_conv_template(template, tok_cfg, tok_json, eos_ids),
        "tokenizer_info": tokenizer_info(tok_json),
        "model_lib": model_libs,
    }


def embedding_config(
    hf_config: dict[str, Any],
    config: Any,
    scheme: QuantScheme,
    tokenizer_files: list[str],
    model_libs: dict[str, str],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """mlc-chat-config.json of a text encoder (model_task "embedding"): no sampling or chat
    fields; "embedding_metadata" lists the bucket functions, pooling and normalisation (see
    hearth.models.encoder.encoder_metadata)."""
    return {
        "version": "0.1.0",
        "model_type": config.model_type,
        "model_task": "embedding",
        "quantization": scheme.name,
        "model_config": hf_config,
        "vocab_size": config.vocab_size,
        "context_window_size": config.max_seq_length,
        "max_batch_size": max(k.batch for k in config.buckets),
        "pad_token_id": _token_id(hf_config.get("pad_token_id")),
        "tokenizer_files": tokenizer_files,
        "model_lib": model_libs,
        "embedding_metadata": {k: v for k, v in meta.items() if k != "params"},
    }
