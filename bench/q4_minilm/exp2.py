import time, torch
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
def run(label, fn, b, show=False):
    t=time.time()
    ws = {n + ".weight": fn(n, W[n]) for n in LINEARS}
    ws.update(word_emb())
    load(ws); e = embed(TEXTS); load({})
    c = cos(e, REF); o = np.argsort(c)
    print(f"| {label} | {b:.3f} | {c.min():.4f} | {c.mean():.4f} | " + "; ".join(f"{TEXTS[i][:12]!r}={c[i]:.3f}" for i in o[:5]) + f" | {time.time()-t:.0f}s", flush=True)
    return ws
S = torch.load("stats_fp.pt")
t=time.time(); SW = collect_stats(LINEARS, weight_by_text=True); print("stats", time.time()-t, flush=True)
torch.save(SW, "stats_fp_w.pt")
run("GPTQ asym g32, H per-text weighted", lambda n, w: gptq(w, SW[n]["H"], 32, asym=True), bits(32, True))
run("GPTQ asym g32 mse-clip", lambda n, w: gptq(w, S[n]["H"], 32, asym=True, clip="mse"), bits(32, True))
run("GPTQ asym g16", lambda n, w: gptq(w, S[n]["H"], 16, asym=True), bits(16, True))
