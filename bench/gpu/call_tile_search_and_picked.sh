# A device call prepared in session 13, run in session 14 (the seventh H100 run's call A; docs/benchmarks.md). On the Qwen2.5-0.5B shape:
# 1. q4f16_1 and q4f32_1: prefill 128/512 and decode, native CUDA (per step and pipelined), the per-step
#    logits path encoded ahead (ARGMAX_AB=picked, DecoderModel.decodePicked) next to the plain per-step row,
#    and per-kernel GPU time of a 512-token prefill.
# 2. If time is left: per-kernel prefill time alone for the matmul / attention tile-search variants
#    (bench/gpu/build_variant.py; bench/gpu/README.md, "The f16 prefill tile search").
D=bench/gpu/device_run.sh
export SKIP_TORCH=1
t0=$(date +%s)
T() { echo "T $1 $(( $(date +%s) - t0 ))" | tee -a $OUT/log.txt; }
: > $OUT/errs.txt
run() { bash $D "$@" >> $OUT/log.txt 2>&1; cat $OUT/errors.txt >> $OUT/errs.txt; rm -f $OUT/errors.txt; }
PREFILL_TIMES=512 ARGMAX_AB="picked ahead" NATIVE_AHEAD=1 run 5 128 'qwen2.5-0.5b-shaped-q4f16_1'; T f16
APPEND=1 PREFILL_TIMES=512 ARGMAX_AB="picked ahead" NATIVE_AHEAD=1 run 5 128 'qwen2.5-0.5b-shaped-q4f32_1'; T f32
[ $(( $(date +%s) - t0 )) -lt 330 ] && { APPEND=1 NO_BENCH=1 PREFILL_TIMES=512 run 5 8 'qwen2.5-0.5b-shaped-q4f16_1-v-*'; T f16v; }
[ $(( $(date +%s) - t0 )) -lt 450 ] && { APPEND=1 NO_BENCH=1 PREFILL_TIMES=512 run 5 8 'qwen2.5-0.5b-shaped-q4f32_1-v-*'; T f32v; }
python3 - <<'PY'
import json, os
out = os.environ["OUT"]
for l in open(f"{out}/results.jsonl"):
    r = json.loads(l); s = (r["result"] or {}).get("samples") or {}
    med = lambda k: round(sorted(s[k])[len(s[k]) // 2]) if s.get(k) else None
    print(r["package"], r["engine"], med("prefill_128_tok_s"), med("prefill_512_tok_s"), med("decode_tok_s"))
for l in open(f"{out}/kernel-times.jsonl"):
    r = json.loads(l); res = r["result"] or {}
    print(r["package"], res.get("gpuMs") and round(res["gpuMs"], 2), res.get("prefillMs") and round(res["prefillMs"], 2), res.get("token"),
          {k: round(v["ms"], 2) for k, v in list((res.get("byKernel") or {}).items())[:6]})
PY
