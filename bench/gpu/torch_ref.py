"""PyTorch eager reference for the decoder benchmarks: the model built from its config.json with
random weights (speed does not depend on them), the same protocol as every other engine
(bench/protocol.py). CUDA in float16 on the GPU machine; also runs on CPU (float32).

    python3 bench/gpu/torch_ref.py <config.json> [--device cuda] [--runs 5] [--decode-new 128] [--max-seq N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from protocol import run_protocol  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--decode-new", type=int, default=128)
    ap.add_argument("--max-seq", type=int, default=None, help="context window to respect (the package's)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    config = AutoConfig.for_model(**json.loads(args.config.read_text()))
    torch.manual_seed(0)
    loads = []
    for _ in range(2):
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(dev).eval()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        loads.append((time.perf_counter() - t0) * 1000)
    state: dict = {}

    def reset() -> None:
        state["cache"] = DynamicCache()

    @torch.inference_mode()
    def step(ids: list[int]) -> int:
        out = model(torch.tensor([ids], device=dev), past_key_values=state["cache"], use_cache=True, logits_to_keep=1)
        state["cache"] = out.past_key_values
        return int(out.logits[0, -1].argmax())  # .item(): the token id back on the host, a sync

    max_seq = args.max_seq or int(config.max_position_embeddings)
    samples, skipped = run_protocol(
        reset, step, lambda t: step([t]), int(config.vocab_size), max_seq, args.runs, [128, 512], args.decode_new
    )
    samples["load_cold_ms"], samples["load_warm_ms"] = [loads[0]], [loads[1]]
    print(
        json.dumps(
            {
                "runtime": f"torch-eager-{dev.type}",
                "dtype": str(dtype),
                "torch": torch.__version__,
                "samples": samples,
                "skipped": skipped,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
