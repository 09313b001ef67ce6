"""Random-weight checkpoints with the exact shapes of real models, for compile-time and speed
measurements (speed does not depend on weight values; no hub access is needed).

    python scripts/make_shaped_checkpoint.py qwen2.5-0.5b /tmp/qwen2.5-0.5b-shaped
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

SHAPES = {
    # Qwen/Qwen2.5-0.5B-Instruct config.json
    "qwen2.5-0.5b": lambda: Qwen2Config(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151645,
    ),
    # HuggingFaceTB/SmolLM2-135M-Instruct config.json
    "smollm2-135m": lambda: LlamaConfig(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shape", choices=list(SHAPES))
    parser.add_argument("out", type=Path)
    parser.add_argument("--tokenizer-from", type=Path, default=None, help="copy tokenizer files from this folder")
    args = parser.parse_args()
    if (args.out / "config.json").exists():
        print(args.out)
        return 0
    torch.manual_seed(0)
    config = SHAPES[args.shape]()
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, max_shard_size="2GB")
    if args.tokenizer_from:
        for f in args.tokenizer_from.iterdir():
            if f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json", "vocab.json", "merges.txt"):
                shutil.copyfile(f, tmp / f.name)
    else:  # a byte-level BPE with no merges: enough for compile/speed, not for text
        from tokenizers import Tokenizer, models, pre_tokenizers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel()
        tok.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(json.dumps({"chat_template": None}))
    tmp.rename(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
