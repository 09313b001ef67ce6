"""The chat task (decoders): MLC's decoder function set with a paged KV cache, the chat fields of
mlc-chat-config.json (sampling, chat template, WebLLM's conv_template), and hearth.native's decoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import NamedParams, Task, token_id
from .conv_template import mlc_conv_template, tokenizer_info
from .end_of_turn import end_of_turn_token_id, stop_token_ids

# The model code and the native driver are imported where they are used, not here: hearth.tasks is
# also how `hearth serve` and `hearth eval` tell packages apart, and importing TVM (models/, native/)
# costs seconds that serving files or a bad-argument error should not pay. Not a cycle: tasks sits
# above models/ and native/ (docs/architecture.md), so these imports could move up unchanged.
if TYPE_CHECKING:
    import tvm
    from tvm.relax.frontend import nn

    from ..models import Architecture, DecoderConfig
    from ..native.decoder import NativeDecoder
    from ..quant import QuantScheme
    from ..weights.source import ModelSource

# Sampling defaults when generation_config.json says nothing (MLC's defaults).
SAMPLING_DEFAULTS = {
    "temperature": 0.7,
    "top_p": 0.95,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repetition_penalty": 1.0,
}


def read_chat_template(src: Path, tokenizer_config: dict[str, Any]) -> str | None:
    """transformers >= 4.43 may keep the template in chat_template.jinja instead of the config."""
    if (src / "chat_template.jinja").is_file():
        return (src / "chat_template.jinja").read_text()
    template = tokenizer_config.get("chat_template")
    return template if isinstance(template, str) else None


def chat_config(
    hf_config: dict[str, Any],
    config: DecoderConfig,
    scheme: QuantScheme,
    src: Path,
    tokenizer_files: list[str],
    model_libs: dict[str, str],
) -> dict[str, Any]:
    """mlc-chat-config.json of a decoder, following MLC's package conventions."""
    tok_cfg = (
        json.loads((src / "tokenizer_config.json").read_text()) if (src / "tokenizer_config.json").is_file() else {}
    )
    gen_file = src / "generation_config.json"
    gen = json.loads(gen_file.read_text()) if gen_file.is_file() else {}
    sampling = {k: gen.get(k, v) for k, v in SAMPLING_DEFAULTS.items()}
    template = read_chat_template(src, tok_cfg)
    tok_json = json.loads((src / "tokenizer.json").read_text()) if (src / "tokenizer.json").is_file() else None
    # The checkpoint's eos id(s), and the token its template ends an assistant turn with (end_of_turn.py):
    # what ends generation in the SDK and `hearth serve`, whatever the family.
    eos = stop_token_ids(
        token_id(gen.get("eos_token_id", hf_config.get("eos_token_id"))),
        end_of_turn_token_id(template, tok_cfg, tok_json),
    )
    from ..models.decoder import sequence_window  # loaded already: `config` is one of its classes

    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    return {
        "version": "0.1.0",
        "model_type": config.model_type,
        "model_task": "chat",
        "quantization": scheme.name,
        "model_config": hf_config,
        "vocab_size": config.vocab_size,
        "context_window_size": config.context_window_size,
        "sliding_window_size": sequence_window(config),
        "prefill_chunk_size": config.prefill_chunk_size,
        "attention_sink_size": 0 if config.cache_slides() else -1,
        "tensor_parallel_shards": 1,
        "max_batch_size": config.max_batch_size,
        **sampling,
        "bos_token_id": token_id(gen.get("bos_token_id", hf_config.get("bos_token_id"))),
        "eos_token_id": eos,
        "pad_token_id": token_id(hf_config.get("pad_token_id")),
        "tokenizer_files": tokenizer_files,
        # Hearth's SDK renders the HF Jinja chat template itself (@huggingface/jinja); null when
        # the checkpoint has none. WebLLM needs an MLC conv_template instead: written when one
        # provably renders the same prompts (ChatML models), else null (see conv_template.py).
        "chat_template": template,
        "conv_template": mlc_conv_template(template, tok_cfg, tok_json, eos_ids),
        "tokenizer_info": tokenizer_info(tok_json),
        "model_lib": model_libs,
    }


class ChatTask(Task):
    name = "chat"
    noun = "a chat model"

    def configure(
        self,
        arch: Architecture,
        source: ModelSource,
        *,
        context_window_size: int | None = None,
        prefill_chunk_size: int | None = None,
        embed_batch_sizes: list[int] | None = None,
        embed_seq_lens: list[int] | None = None,
    ) -> tuple[DecoderConfig, dict[str, Any]]:
        """context_window_size / prefill_chunk_size size the KV cache."""
        if embed_batch_sizes or embed_seq_lens:
            raise ValueError(
                f"embed_batch_sizes / embed_seq_lens apply to embedding models; {arch.name} is a {arch.task} model"
            )
        config = arch.config_class.from_hf(
            source.config, context_window_size=context_window_size, prefill_chunk_size=prefill_chunk_size
        )
        return config, {}

    def export(self, module: nn.Module, target: tvm.target.Target) -> tuple[tvm.ir.IRModule, NamedParams]:
        from ..models import export_model  # TVM, lazily (see the imports above)

        return export_model(module, target)

    def metadata(self, config: DecoderConfig, quantization: str, named_params: NamedParams) -> dict[str, Any]:
        from ..models import metadata  # TVM, lazily (see the imports above)

        return metadata(config, quantization, named_params)

    def package_config(
        self,
        source: ModelSource,
        config: DecoderConfig,
        scheme: QuantScheme,
        tokenizer_files: list[str],
        libs: dict[str, str],
        meta: dict[str, Any],
    ) -> dict[str, Any]:
        return chat_config(source.config, config, scheme, source.path, tokenizer_files, libs)

    def open_native(
        self, package_dir: Path, target: str = "llvm", max_total_seq_len: int | None = None
    ) -> tuple[NativeDecoder, dict[str, Any]]:
        """(NativeDecoder, mlc-chat-config.json) of a chat package; the KV cache holds
        max_total_seq_len tokens (default: the package's context window)."""
        from ..native.decoder import load_decoder  # TVM, lazily (see the imports above)

        return load_decoder(package_dir, target, max_total_seq_len)


CHAT = ChatTask()
