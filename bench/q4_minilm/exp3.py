import time, torch, random
import sim
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
def run(label, ws_lin, b):
    report_linears(label, ws_lin, b, worst=4)
# degenerate calibration texts: runs of one docstring word / one symbol (not the parity ones)
rng = random.Random(7)
words = [w for t in sim.CALIB for w in t.split() if w.isalpha() and 2 <= len(w) <= 8]
deg = [(" ".join([rng.choice(words)] * rng.randint(5, 150))) for _ in range(24)]
deg += [rng.choice("?#*=~+:;,/") * rng.randint(3, 60) for _ in range(8)]
deg = [d for d in deg if d not in set(TEXTS)]
sim.CALIB = sim.CALIB + deg
print(len(sim.CALIB), "calib texts", flush=True)
t=time.time(); S = collect_stats(LINEARS); print("stats", time.time()-t, flush=True)
torch.save(S, "stats_fp_deg.pt")
Q = {n: gptq(W[n], S[n]["H"], 32, asym=True) for n in LINEARS}
torch.save(Q, "q_gptq_asym_deg.pt")
run("GPTQ asym g32, calib + degenerate", Q, bits(32, True))
for typ in ["attention.self", "attention.output.dense", "intermediate.dense", "output.dense"]:
    q = {n: (W[n] if (typ in n and not (typ == "output.dense" and "attention" in n)) else Q[n]) for n in LINEARS}
    run(f"  same, {typ} fp32", q, 0)
