import time, torch
import sim
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
E = "embeddings.word_embeddings.weight"
def run(label, ws_lin, emb, b):
    t=time.time()
    ws = {n + ".weight": ws_lin[n] for n in LINEARS}
    if emb is not None: ws[E] = emb
    load(ws); e = embed(TEXTS); load({})
    c = cos(e, REF); o = np.argsort(c)
    print(f"| {label} | {b} | {c.min():.4f} | {c.mean():.4f} | " + "; ".join(f"{TEXTS[i][:12]!r}={c[i]:.3f}" for i in o[:3]) + f" | {time.time()-t:.0f}s", flush=True)
embs = {"emb RTN sym (q4*_1)": hearth_rtn(ORIG[E], "q4f32_1"), "emb _mse": hearth_rtn(ORIG[E], "q4f32_mse"),
        "emb asym g32": rtn(ORIG[E], 32, asym=True), "emb asym g32 mse-clip": rtn(ORIG[E], 32, asym=True, clip="mse")}
for k, v in embs.items():
    run(f"only {k}, Linears fp", W, v, "-")
S = torch.load("stats_fp.pt")
Q = {n: gptq(W[n], S[n]["H"], 32, asym=True) for n in LINEARS}
torch.save(Q, "q_gptq_asym.pt")
for k in ["emb asym g32", "emb asym g32 mse-clip"]:
    run(f"GPTQ asym g32 + {k}", Q, embs[k], "-")
Q16 = {n: gptq(W[n], S[n]["H"], 16, asym=True) for n in LINEARS}
run("GPTQ asym g16 + emb asym g32 mse-clip", Q16, embs["emb asym g32 mse-clip"], "-")
