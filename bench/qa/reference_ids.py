"""Greedy answers of the transformers fp32 reference on prompt token ids, on any machine with torch and
transformers (a GPU one included), so the slowest engine of the QA benchmark need not run on 2 CPU cores.

    python bench/qa/reference_ids.py --model <HF folder | folder with a .gguf> [--gguf-file NAME] \
        --ids ids.json --out tokens.json [--device cuda]

ids.json: {"maxNewTokens": 64, "eos": [2], "prompts": [{"id": "q001", "ids": [...]}]} (written by
bench/qa_rag.py --reference-ids: the prompts rendered with the reference tokenizer's apply_chat_template).
tokens.json: {"device", "torch", "transformers", "prompts": [{"id", "tokens", "ms"}]}, the stop token left out.
With --gguf-file the weights are the GGUF's own, dequantized to f32 by transformers' GGUF loader (the same
conversion `hearth compile` caches). On CUDA, TF32 is off so matrix products stay fp32.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--gguf-file", default=None)
    ap.add_argument("--ids", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    job = json.loads(args.ids.read_text())
    kw = {"gguf_file": args.gguf_file} if args.gguf_file else {}
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, **kw).to(args.device).eval()
    load_s = time.perf_counter() - t0
    eos = set(job["eos"])
    out = []
    with torch.no_grad():
        for p in job["prompts"]:
            t1 = time.perf_counter()
            res = model(torch.tensor([p["ids"]], device=args.device), use_cache=True)
            tokens: list[int] = []
            while True:
                tok = int(torch.argmax(res.logits[0, -1]))
                if tok in eos:
                    break
                tokens.append(tok)
                if len(tokens) >= job["maxNewTokens"]:
                    break
                res = model(
                    torch.tensor([[tok]], device=args.device), past_key_values=res.past_key_values, use_cache=True
                )
            out.append({"id": p["id"], "tokens": tokens, "ms": round((time.perf_counter() - t1) * 1000, 1)})
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    args.out.write_text(
        json.dumps(
            {
                "device": device,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "load_seconds": round(load_s, 1),
                "prompts": out,
            }
        )
        + "\n"
    )
    print(f"{len(out)} answers on {device} in {sum(r['ms'] for r in out) / 1000:.1f} s (load {load_s:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
