import time, torch
import sim
from sim import *
W = {n: ORIG[n + ".weight"] for n in LINEARS}
NP = {k: v.numel() for k, v in ORIG.items() if not k.startswith("pooler")}
def pkg_bits(lin_bits):
    tot = 0.0
    for k, n in NP.items():
        name = k[:-len(".weight")] if k.endswith(".weight") else None
        if name in lin_bits: tot += n * lin_bits[name]
        elif k == "embeddings.word_embeddings.weight": tot += n * 4.5
        else: tot += n * 16
    return tot / sum(NP.values())
def run(label, ws_lin, lin_bits):
    report_linears(label, ws_lin, pkg_bits(lin_bits))
print("RTN q4f16 pkg bits", pkg_bits({n: 4.5 for n in LINEARS}), "q8f16", pkg_bits({n: 8.5 for n in LINEARS}))
Q = torch.load("q_gptq_asym_deg.pt")
Q8 = {n: hearth_rtn(W[n], "q8f32_1") for n in LINEARS}
def is_type(n, typ): return typ in n and not (typ == "output.dense" and "attention" in n)
sel = lambda n: is_type(n, "attention.output.dense") or is_type(n, "output.dense")
run("GPTQ-asym attn-out + FFN-down 4-bit, rest q8", {n: Q[n] if sel(n) else Q8[n] for n in LINEARS}, {n: 4.625 if sel(n) else 8.5 for n in LINEARS})
sel = lambda n: is_type(n, "attention.output.dense")
run("GPTQ-asym attn-out 4-bit, rest q8", {n: Q[n] if sel(n) else Q8[n] for n in LINEARS}, {n: 4.625 if sel(n) else 8.5 for n in LINEARS})
run("all Linears q8 (q8f16_1 Linears, 4-bit emb)", Q8, {n: 8.5 for n in LINEARS})
# sequential GPTQ asym g32 (original calibration, no degenerate runs)
cur = {}
t = time.time()
for L in range(6):
    names = [n for n in LINEARS if f"layer.{L}." in n]
    load({k + ".weight": v for k, v in cur.items()})
    S = collect_stats(names)
    for n in names:
        cur[n] = gptq(W[n], S[n]["H"], 32, asym=True)
    print("layer", L, time.time() - t, flush=True)
load({})
torch.save(cur, "q_gptq_asym_seq.pt")
run("sequential GPTQ asym g32", cur, {n: 4.625 for n in LINEARS})
