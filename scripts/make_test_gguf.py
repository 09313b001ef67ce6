#!/usr/bin/env python3
"""Build a tiny llama GGUF file for tests, offline and reproducibly (like llama.cpp's converter).

A random LlamaForCausalLM (2 layers, hidden 64, 4 query / 2 KV heads, tied embeddings: SmolLM2's
shape in miniature) with tiny-qwen2-bpe's byte-level BPE vocabulary (tokens + merges, ChatML
template), written with gguf's GGUFWriter under architecture "llama" the way
`convert_hf_to_gguf.py` does it: llama.cpp tensor names, the q/k rows permuted into llama.cpp's
rotary order (the inverse of transformers' reverse permute), Linears quantized with
gguf.quants.quantize (Q4_1 by default), the embedding table Q8_0, norms F32. transformers and
`hearth compile` read it back like SmolLM2's file.

    >>> from make_test_gguf import ensure_test_gguf
    >>> path = ensure_test_gguf()                         # Q4_1 Linears, Q8_0 embedding, cached
    >>> path = ensure_test_gguf(linear_type="Q4_0")       # other carried types
    >>> path = ensure_test_gguf(linear_type="Q5_1")       # a type the _gguf schemes refuse
    >>> path = ensure_test_gguf(linear_type="Q4_K", down_type="Q6_K", hidden_size=256, intermediate_size=512)
    ...                                                   # K-quants (rows of 256: a wider model)
    >>> path = ensure_test_gguf(chat_template=None)       # a file without a chat template
    >>> build_test_gguf(tmp_path / "x.gguf", ...)         # the same, written where you say

Files are cached in `cache_root()/test-models/tiny-llama-gguf-<key>/`; the key hashes the
arguments, BUILD_VERSION and the versions of the libraries that shape the bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from hearth.cache import atomic_dir, cache_root, content_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_test_models as mtm  # noqa: E402

BUILD_VERSION = 1
TOKENIZER_MODEL = "tiny-qwen2-bpe"  # its byte-level BPE vocabulary and merges
FILE_NAME = "tiny-llama-gguf.{kind}.gguf"
CHATML = mtm.QWEN25_CHAT_TEMPLATE
# SmolLM2 in miniature. hidden and intermediate are multiples of 32 (GGUF blocks run along K).
SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0,
}
# Larger than HF's 0.02 so that a random model's next-token logits are decisive (greedy tests).
INIT_STD = 0.25


def _permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF rotary halves -> interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _random_weights(vocab: int, seed: int, shape: dict | None = None) -> dict[str, np.ndarray]:
    """HF-named float32 weights of the tiny llama (numpy RNG: no torch needed to write a file)."""
    rng = np.random.default_rng(seed)
    shape = shape or SHAPE
    h, i, nh, nkv = (
        shape[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads")
    )
    hd = h // nh

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * INIT_STD / np.sqrt(cols / 64)).astype(np.float32)

    w = {
        "model.embed_tokens.weight": mat(vocab, h),
        "model.norm.weight": (1 + 0.1 * rng.standard_normal(h)).astype(np.float32),
    }
    for layer in range(shape["num_hidden_layers"]):
        p = f"model.layers.{layer}"
        w[f"{p}.self_attn.q_proj.weight"] = mat(nh * hd, h)
        w[f"{p}.self_attn.k_proj.weight"] = mat(nkv * hd, h)
        w[f"{p}.self_attn.v_proj.weight"] = mat(nkv * hd, h)
        w[f"{p}.self_attn.o_proj.weight"] = mat(h, nh * hd)
        w[f"{p}.mlp.gate_proj.weight"] = mat(i, h)
        w[f"{p}.mlp.up_proj.weight"] = mat(i, h)
        w[f"{p}.mlp.down_proj.weight"] = mat(h, i)
        w[f"{p}.input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(h)).astype(np.float32)
        w[f"{p}.post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(h)).astype(np.float32)
    return w


# HF name pattern -> llama.cpp name (gguf-py's tensor map for LLM_ARCH_LLAMA, the subset used here).
_GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
}


def _quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """A plain Q4_K encoder (gguf-py has none): per sub-block of 32, scale (max - min) / 15 and
    minimum -min as 6-bit multiples of the super-block's d / dmin; bytes as gguf's Q4_K reads them."""
    n = x.size // 256
    sub = x.reshape(n, 8, 32).astype(np.float32)
    lo = np.minimum(sub.min(axis=-1), 0)
    scale_f, min_f = (sub.max(axis=-1) - lo) / 15, -lo
    d = (scale_f.max(axis=-1) / 63).astype(np.float16)
    dmin = (min_f.max(axis=-1) / 63).astype(np.float16)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.clip(np.nan_to_num(np.rint(scale_f / d.astype(np.float32)[:, None])), 0, 63).astype(np.uint8)
        m = np.clip(np.nan_to_num(np.rint(min_f / dmin.astype(np.float32)[:, None])), 0, 63).astype(np.uint8)
        eff = d.astype(np.float32)[:, None] * sc
        q = np.nan_to_num(np.rint((sub + (dmin.astype(np.float32)[:, None] * m)[..., None]) / eff[..., None]))
    q = np.clip(q, 0, 15).astype(np.uint8)
    scales = np.concatenate(
        [sc[:, :4] | (sc[:, 4:] >> 4) << 6, m[:, :4] | (m[:, 4:] >> 4) << 6, (sc[:, 4:] & 15) | (m[:, 4:] & 15) << 4],
        axis=-1,
    )
    qs = (q[:, 0::2] | q[:, 1::2] << 4).reshape(n, 128)  # chunk c: sub-block 2c low nibbles, 2c + 1 high
    return np.concatenate([d[:, None].view(np.uint8), dmin[:, None].view(np.uint8), scales, qs], axis=-1)


def _quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """A plain Q6_K encoder: per sub-block of 16, scale max|x| / 31 as an int8 multiple of the
    super-block's d, codes q - 32 in 6 bits; bytes as gguf's Q6_K reads them (ql, qh, scales, d)."""
    n = x.size // 256
    sub = x.reshape(n, 16, 16).astype(np.float32)
    scale_f = np.abs(sub).max(axis=-1) / 31
    d = (scale_f.max(axis=-1) / 127).astype(np.float16)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.clip(np.nan_to_num(np.rint(scale_f / d.astype(np.float32)[:, None])), 0, 127).astype(np.int8)
        q = np.nan_to_num(np.rint(sub / (d.astype(np.float32)[:, None] * sc)[..., None]))
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, 8, 32)  # row r = elements 32r..32r+31
    ql = np.zeros((n, 128), np.uint8)
    qh = np.zeros((n, 64), np.uint8)
    for r in range(8):  # half h = r // 4; ql nibble (r % 4) // 2 of byte 64h + 32(r % 2) + p; qh bits 2(r % 4)
        h = r // 4
        at = 64 * h + 32 * (r % 2)
        ql[:, at : at + 32] |= (q[:, r] & 15) << (4 * ((r % 4) // 2))
        qh[:, 32 * h : 32 * h + 32] |= (q[:, r] >> 4) << (2 * (r % 4))
    return np.concatenate([ql, qh, sc.view(np.uint8), d[:, None].view(np.uint8)], axis=-1)


def _quantize(array: np.ndarray, kind: object) -> np.ndarray:
    """gguf.quants.quantize, plus Q4_K / Q6_K encoders of our own (raw blocks, [rows, bytes])."""
    from gguf.quants import quantize

    name = getattr(kind, "name", "")
    if name not in ("Q4_K", "Q6_K"):
        return quantize(array, kind)
    if array.shape[-1] % 256:
        raise ValueError(f"{name} needs rows of a multiple of 256 elements, got {array.shape}")
    blocks = (_quantize_q4_k if name == "Q4_K" else _quantize_q6_k)(array)
    return blocks.reshape(array.shape[0], -1)


def _gguf_name(hf: str) -> str:
    if hf in _GGUF_NAMES:
        return _GGUF_NAMES[hf]
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{_GGUF_NAMES[rest]}"


def _tokenizer() -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """(tokens by id, token types, merges, special ids) of the BPE test tokenizer."""
    folder = mtm.ensure_test_model(TOKENIZER_MODEL)
    doc = json.loads((folder / "tokenizer.json").read_text())
    vocab: dict[str, int] = dict(doc["model"]["vocab"])
    for t in doc["added_tokens"]:
        vocab[t["content"]] = t["id"]
    tokens = [""] * len(vocab)
    for tok, idx in vocab.items():
        tokens[idx] = tok
    specials = {t["content"] for t in doc["added_tokens"] if t.get("special")}
    types = [3 if t in specials else 1 for t in tokens]  # 3 = CONTROL, 1 = NORMAL (gguf TokenType)
    merges = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]
    ids = {"bos": vocab["<|endoftext|>"], "eos": vocab["<|im_end|>"], "pad": vocab["<|endoftext|>"]}
    return tokens, types, merges, ids


def build_test_gguf(
    out: Path,
    *,
    linear_type: str = "Q4_1",
    embed_type: str = "Q8_0",
    architecture: str = "llama",
    chat_template: str | None = CHATML,
    seed: int = 0,
    down_type: str | None = None,
    hidden_size: int = SHAPE["hidden_size"],
    intermediate_size: int = SHAPE["intermediate_size"],
) -> Path:
    """Write the tiny llama as a GGUF file at `out` (see the module docstring) and return it.

    linear_type / embed_type: gguf GGMLQuantizationType names (F32, F16, Q4_0, Q4_1, Q8_0, Q5_0,
    ..., Q4_K / Q6_K with rows of a multiple of 256: hidden_size / intermediate_size); down_type:
    the ffn_down tensors' type (default linear_type), as a Q4_K_M file keeps Q6_K there;
    architecture: the `general.architecture` written (the tensors stay llama's).
    """
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType

    tokens, types, merges, ids = _tokenizer()
    shape = {**SHAPE, "hidden_size": hidden_size, "intermediate_size": intermediate_size}
    weights = _random_weights(len(tokens), seed, shape)
    nh, nkv = SHAPE["num_attention_heads"], SHAPE["num_key_value_heads"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    w = GGUFWriter(str(out), architecture)
    w.add_name("tiny-llama-gguf")
    w.add_context_length(shape["max_position_embeddings"])
    w.add_embedding_length(shape["hidden_size"])
    w.add_block_count(shape["num_hidden_layers"])
    w.add_feed_forward_length(shape["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(SHAPE["rope_theta"])
    w.add_layer_norm_rms_eps(SHAPE["rms_norm_eps"])
    w.add_rope_dimension_count(shape["hidden_size"] // nh)
    w.add_vocab_size(len(tokens))
    file_type = {
        "Q4_0": LlamaFileType.MOSTLY_Q4_0,
        "Q4_1": LlamaFileType.MOSTLY_Q4_1,
        "Q8_0": LlamaFileType.MOSTLY_Q8_0,
        "F16": LlamaFileType.MOSTLY_F16,
    }
    w.add_file_type(int(file_type.get(linear_type, LlamaFileType.ALL_F32)))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([TokenType(t) for t in types])
    w.add_token_merges(merges)
    w.add_bos_token_id(ids["bos"])
    w.add_eos_token_id(ids["eos"])
    w.add_pad_token_id(ids["pad"])
    w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    for hf, array in weights.items():
        if hf.endswith("q_proj.weight"):
            array = _permute(array, nh, nh)
        elif hf.endswith("k_proj.weight"):
            array = _permute(array, nh, nkv)
        linear = down_type if down_type and hf.endswith("down_proj.weight") else linear_type
        kind = GGMLQuantizationType[
            embed_type if hf == "model.embed_tokens.weight" else linear if array.ndim == 2 else "F32"
        ]
        if kind == GGMLQuantizationType.F32:
            w.add_tensor(_gguf_name(hf), array)
        elif kind == GGMLQuantizationType.F16:
            w.add_tensor(_gguf_name(hf), array.astype(np.float16))
        else:
            w.add_tensor(_gguf_name(hf), _quantize(array, kind), raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _key(options: dict) -> str:
    versions = {lib: metadata.version(lib) for lib in ("gguf", "numpy")}
    tok_dir = mtm.model_dir(TOKENIZER_MODEL).name
    return content_key(
        [
            f"build-version={BUILD_VERSION}",
            json.dumps(options, sort_keys=True),
            json.dumps(versions, sort_keys=True),
            tok_dir,
        ]
    )


def ensure_test_gguf(
    *,
    linear_type: str = "Q4_1",
    embed_type: str = "Q8_0",
    architecture: str = "llama",
    chat_template: str | None = CHATML,
    seed: int = 0,
    down_type: str | None = None,
    hidden_size: int = SHAPE["hidden_size"],
    intermediate_size: int = SHAPE["intermediate_size"],
) -> Path:
    """build_test_gguf into the test-model cache (built once per set of arguments); the file's path."""
    options: dict = {
        "linear_type": linear_type,
        "embed_type": embed_type,
        "architecture": architecture,
        "chat_template": chat_template,
        "seed": seed,
    }
    # Only non-default new options join the key, so the files cached before them keep their keys.
    extra = {"down_type": down_type, "hidden_size": hidden_size, "intermediate_size": intermediate_size}
    defaults = {"down_type": None, "hidden_size": SHAPE["hidden_size"], "intermediate_size": SHAPE["intermediate_size"]}
    options.update({k: v for k, v in extra.items() if v != defaults[k]})
    folder = cache_root() / "test-models" / f"tiny-llama-gguf-{_key(options)}"
    path = folder / FILE_NAME.format(kind=linear_type)
    if path.is_file():
        return path
    with mtm._build_lock(folder):
        if path.is_file():
            return path
        with atomic_dir(folder) as tmp:
            build_test_gguf(tmp / path.name, **options)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--linear-type", default="Q4_1")
    ap.add_argument("--embed-type", default="Q8_0")
    ap.add_argument("--out", default=None, help="write here instead of the cache")
    args = ap.parse_args(argv)
    if args.out:
        print(build_test_gguf(Path(args.out), linear_type=args.linear_type, embed_type=args.embed_type))
    else:
        print(ensure_test_gguf(linear_type=args.linear_type, embed_type=args.embed_type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
