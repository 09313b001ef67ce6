"""Device side: the PyTorch reference for the GPU embeddings table (issue 17 item 4).

all-MiniLM-L6-v2's real weights (90 MB) do not fit the carry, so bench/gpu/make_shards.py fills the
Hearth q0f32 package with random values and this script loads THOSE values into transformers' BertModel
(the inverse of compile/hearth/models/bert.py's param_map). Both engines then compute the same function,
so the vectors can be compared (cosine) as well as timed. The model runs as sentence-transformers runs
all-MiniLM-L6-v2 (Transformer -> mean Pooling -> Normalize); sentence-transformers itself is used when it
imports on the device (it needs scipy and scikit-learn), else the same three steps in plain torch.

    python3 bench/gpu/embed_torch.py <q0f32_package> --dtype float16 --runs 5 [--verify texts.json]

Prints one JSON line: {"engine", "dtype", "batches": {b: [sentences/s per run]}, "vectors": [...]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

SEQ = 128


def hearth_tensors(pkg: Path) -> dict[str, np.ndarray]:
    """The package's tensors by Hearth name, read from its shards via tensor-cache.json (float32 only)."""
    cache = json.loads((pkg / "tensor-cache.json").read_text())
    out: dict[str, np.ndarray] = {}
    for shard in cache["records"]:
        raw = (pkg / shard["dataPath"]).read_bytes()
        for rec in shard["records"]:
            if rec["dtype"] != "float32":
                raise SystemExit(f"{pkg}: {rec['name']} is {rec['dtype']}; this reference needs the q0f32 package")
            a = np.frombuffer(raw, dtype=np.float32, count=int(np.prod(rec["shape"])), offset=rec["byteOffset"])
            out[rec["name"]] = a.reshape(rec["shape"])
    return out


def hf_state(t: dict[str, np.ndarray], layers: int) -> dict[str, torch.Tensor]:
    """Hearth names -> BertModel names (the inverse of bert.param_map; qkv rows split in three)."""
    s = {
        "embeddings.word_embeddings.weight": t["embeddings.word.weight"],
        "embeddings.position_embeddings.weight": t["embeddings.position.weight"],
        "embeddings.token_type_embeddings.weight": t["embeddings.token_type.weight"],
        "embeddings.LayerNorm.weight": t["embeddings.norm.weight"],
        "embeddings.LayerNorm.bias": t["embeddings.norm.bias"],
    }
    for i in range(layers):
        hf, ours = f"encoder.layer.{i}", f"layers.{i}"
        for kind in ("weight", "bias"):
            q, k, v = np.split(t[f"{ours}.attn.qkv.{kind}"], 3, axis=0)
            s[f"{hf}.attention.self.query.{kind}"] = q
            s[f"{hf}.attention.self.key.{kind}"] = k
            s[f"{hf}.attention.self.value.{kind}"] = v
            s[f"{hf}.attention.output.dense.{kind}"] = t[f"{ours}.attn.out.{kind}"]
            s[f"{hf}.attention.output.LayerNorm.{kind}"] = t[f"{ours}.attn_norm.{kind}"]
            s[f"{hf}.intermediate.dense.{kind}"] = t[f"{ours}.mlp.up.{kind}"]
            s[f"{hf}.output.dense.{kind}"] = t[f"{ours}.mlp.down.{kind}"]
            s[f"{hf}.output.LayerNorm.{kind}"] = t[f"{ours}.mlp_norm.{kind}"]
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in s.items()}


def build(pkg: Path, hf_config: Path, dtype: torch.dtype, device: str, work: Path):
    """(encode(texts) -> normalized vectors, engine name)."""
    from transformers import BertConfig, BertModel

    config = BertConfig.from_pretrained(hf_config)
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(hf_state(hearth_tensors(pkg), config.num_hidden_layers), strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"weights do not map onto BertModel: missing {missing}, unexpected {unexpected}")
    folder = work / "st-model"
    model.save_pretrained(folder)
    config.save_pretrained(folder)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (pkg / f).exists():
            (folder / f).write_bytes((pkg / f).read_bytes())
    try:
        from sentence_transformers import SentenceTransformer, models

        st = SentenceTransformer(
            modules=[
                models.Transformer(str(folder), max_seq_length=SEQ),
                models.Pooling(config.hidden_size, pooling_mode="mean"),
                models.Normalize(),
            ],
            device=device,
        ).to(dtype)

        def encode(texts: list[str]) -> np.ndarray:
            return st.encode(texts, batch_size=len(texts), convert_to_numpy=True)

        import sentence_transformers

        return encode, f"sentence-transformers {sentence_transformers.__version__}"
    except ImportError as e:
        print(f"sentence-transformers unavailable ({e}); the same modules in plain torch", file=sys.stderr)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = model.to(device=device, dtype=dtype).eval()

    def encode_plain(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            enc = tok(texts, padding=True, truncation=True, max_length=SEQ, return_tensors="pt").to(device)
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            v = torch.nn.functional.normalize(v.float(), dim=-1)
            return v.cpu().numpy()

    return encode_plain, "torch (sentence-transformers' Transformer -> mean Pooling -> Normalize, written out)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", type=Path)
    ap.add_argument("--hf-config", type=Path, required=True)
    ap.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--texts", type=Path, required=True, help="JSON array of 128-token bench texts")
    ap.add_argument("--verify", type=Path, help="JSON array of texts whose vectors are printed")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    import tempfile

    dtype = getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        encode, engine = build(args.package, args.hf_config, dtype, args.device, Path(tmp))
        texts = json.loads(args.texts.read_text())
        result: dict = {"engine": engine, "dtype": args.dtype, "torch": torch.__version__, "batches": {}}
        if args.device == "cuda":
            result["gpu"] = torch.cuda.get_device_name()
        for b in [int(x) for x in args.batches.split(",")]:
            chunk = texts[:b]
            for _ in range(args.warmup):
                encode(chunk)
            xs = []
            for _ in range(args.runs):
                if args.device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                encode(chunk)  # returns numpy: the copy back to the host ends the timed call
                xs.append(b / (time.perf_counter() - t0))
            result["batches"][str(b)] = xs
            print(f"{engine} {args.dtype}: batch {b}: {sorted(xs)[len(xs) // 2]:.1f} sentences/s", file=sys.stderr)
        if args.verify:
            result["vectors"] = encode(json.loads(args.verify.read_text())).astype(float).tolist()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
