import torch
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
E = "embeddings.word_embeddings.weight"
Q8 = {n + ".weight": hearth_rtn(W[n], "q8f32_1") for n in LINEARS}
for s in ["q4f32_mse", "q4f32_1"]:
    ws = dict(Q8); ws[E] = hearth_rtn(ORIG[E], s)
    load(ws); e = embed(TEXTS); load({}); c = cos(e, REF)
    print(s, "emb + q8 Linears", f"{c.min():.4f} {c.mean():.4f}", flush=True)
