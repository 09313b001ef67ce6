import time, torch
from sim import *
t=time.time()
print(len(CALIB), "calib; ref ready", time.time()-t, flush=True)
W = {n: ORIG[n + ".weight"] for n in LINEARS}
def run(label, fn, b):
    t=time.time()
    ws = {n + ".weight": fn(n, W[n]) for n in LINEARS}
    ws.update(word_emb())
    mn, me, worst = evaluate(ws)
    print(f"| {label} | {b:.3f} | {mn:.4f} | {me:.4f} | {worst} | {time.time()-t:.0f}s", flush=True)
run("hearth q4f32_1 RTN", lambda n, w: hearth_rtn(w, "q4f32_1"), bits(32, False))
run("sim sym RTN g32", lambda n, w: rtn(w, 32), bits(32, False))
run("asym RTN g32", lambda n, w: rtn(w, 32, asym=True), bits(32, True))
run("asym RTN g32 mse-clip", lambda n, w: rtn(w, 32, asym=True, clip="mse"), bits(32, True))
t=time.time(); S = collect_stats(LINEARS); print("stats", time.time()-t, flush=True)
torch.save(S, "stats_fp.pt")
run("GPTQ sym g32 actorder (H from fp model)", lambda n, w: gptq(w, S[n]["H"], 32), bits(32, False))
run("GPTQ asym g32 actorder", lambda n, w: gptq(w, S[n]["H"], 32, asym=True), bits(32, True))
