import time, torch
import sim
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
def run(label, ws_lin, b, emb=True):
    t=time.time()
    ws = {n + ".weight": ws_lin[n] for n in LINEARS}
    if emb: ws.update(word_emb())
    load(ws); e = embed(TEXTS); load({})
    c = cos(e, REF); o = np.argsort(c)
    print(f"| {label} | {b} | {c.min():.4f} | {c.mean():.4f} | " + "; ".join(f"{TEXTS[i][:12]!r}={c[i]:.3f}" for i in o[:3]) + f" | {time.time()-t:.0f}s", flush=True)
Q = torch.load("q_gptq_asym_deg.pt")
def is_type(n, typ): return typ in n and not (typ == "output.dense" and "attention" in n)
for typ in ["attention.self", "attention.output.dense", "intermediate.dense", "output.dense"]:
    run(f"only {typ} GPTQ-asym 4-bit, rest fp, emb fp", {n: (Q[n] if is_type(n, typ) else W[n]) for n in LINEARS}, "-", emb=False)
for L in range(6):
    run(f"only layer {L} GPTQ-asym 4-bit, rest fp, emb fp", {n: (Q[n] if f"layer.{L}." in n else W[n]) for n in LINEARS}, "-", emb=False)
