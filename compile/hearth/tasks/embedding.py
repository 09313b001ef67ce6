"""The embedding task (text encoders): one function per static shape bucket (batch x sequence length),
the embedding fields of mlc-chat-config.json (buckets, pooling, normalisation), and hearth.native's
encoder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import NamedParams, Task, token_id

if TYPE_CHECKING:  # TVM is imported where it is used, as in chat.py (the reason is there)
    import tvm
    from tvm.relax.frontend import nn

    from ..models import Architecture
    from ..native.encoder import NativeEncoder
    from ..quant import QuantScheme
    from ..weights.source import ModelSource


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
        "pad_token_id": token_id(hf_config.get("pad_token_id")),
        "tokenizer_files": tokenizer_files,
        "model_lib": model_libs,
        "embedding_metadata": {k: v for k, v in meta.items() if k != "params"},
    }


class EmbeddingTask(Task):
    name = "embedding"
    noun = "an embedding model"

    def configure(
        self,
        arch: Architecture,
        source: ModelSource,
        *,
        context_window_size: int | None = None,
        prefill_chunk_size: int | None = None,
        embed_batch_sizes: list[int] | None = None,
        embed_seq_lens: list[int] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """context_window_size caps max_seq_length; the shapes are buckets, embed_batch_sizes x
        embed_seq_lens (hearth.models.encoder), recorded in the build key."""
        if prefill_chunk_size is not None:
            raise ValueError(
                f"prefill_chunk_size applies to chat models; {arch.name} is an embedding model (its shapes are buckets)"
            )
        # Encoders also read the sentence-transformers files next to config.json (pooling).
        config = arch.config_class.from_hf(
            source.config,
            source.path,
            max_seq_length=context_window_size,
            batch_sizes=embed_batch_sizes,
            seq_lens=embed_seq_lens,
        )
        return config, {"embed_buckets": [[k.batch, k.seq] for k in config.buckets]}

    def export(self, module: nn.Module, target: tvm.target.Target) -> tuple[tvm.ir.IRModule, NamedParams]:
        from ..models import export_encoder  # TVM, lazily (chat.py says why)

        return export_encoder(module, target)

    def metadata(self, config: Any, quantization: str, named_params: NamedParams) -> dict[str, Any]:
        from ..models import encoder_metadata  # TVM, lazily (chat.py says why)

        return encoder_metadata(config, quantization, named_params)

    def package_config(
        self,
        source: ModelSource,
        config: Any,
        scheme: QuantScheme,
        tokenizer_files: list[str],
        libs: dict[str, str],
        meta: dict[str, Any],
    ) -> dict[str, Any]:
        return embedding_config(source.config, config, scheme, tokenizer_files, libs, meta)

    def open_native(self, package_dir: Path, target: str = "llvm") -> NativeEncoder:
        from ..native.encoder import NativeEncoder  # TVM, lazily (chat.py says why)

        return NativeEncoder.from_package(package_dir, target)


EMBEDDING = EmbeddingTask()
