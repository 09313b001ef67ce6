import time, torch
import sim
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
E = "embeddings.word_embeddings.weight"
NP = {k: v.numel() for k, v in ORIG.items() if not k.startswith("pooler")}
def pkg_bits(lin_bits, emb_bits):
    tot = 0.0
    for k, n in NP.items():
        name = k[:-len(".weight")] if k.endswith(".weight") else None
        if name in lin_bits: tot += n * lin_bits[name]
        elif k == E: tot += n * emb_bits
        else: tot += n * 16
    return tot / sum(NP.values())
emb = rtn(ORIG[E], 32, asym=True)
def run(label, ws_lin, lin_bits):
    ws = {n + ".weight": ws_lin[n] for n in LINEARS}; ws[E] = emb
    load(ws); e = embed(TEXTS); load({})
    c = cos(e, REF); o = np.argsort(c)
    print(f"| {label} | {pkg_bits(lin_bits, 4.625):.3f} | {c.min():.4f} | {c.mean():.4f} | " + "; ".join(f"{TEXTS[i][:12]!r}={c[i]:.3f}" for i in o[:3]), flush=True)
Q = torch.load("q_gptq_asym.pt")
Q8 = {n: hearth_rtn(W[n], "q8f32_1") for n in LINEARS}
def is_type(n, typ): return typ in n and not (typ == "output.dense" and "attention" in n)
def mix(label, q8types):
    sel = lambda n: any(is_type(n, t) for t in q8types)
    run(label, {n: Q8[n] if sel(n) else Q[n] for n in LINEARS}, {n: 8.5 if sel(n) else 4.625 for n in LINEARS})
print("asym g32 4-bit everywhere bits:", pkg_bits({n: 4.625 for n in LINEARS}, 4.625))
mix("GPTQ-asym, all Linears q8", ["attention", "intermediate", "output.dense"])
mix("GPTQ-asym, q/k/v in q8", ["attention.self"])
mix("GPTQ-asym, q/k/v + FFN up in q8", ["attention.self", "intermediate.dense"])
mix("GPTQ-asym, all but attn-out in q8", ["attention.self", "intermediate.dense", "output.dense"])
