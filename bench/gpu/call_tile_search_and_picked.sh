# A device call prepared in session 13, run in session 14 (the seventh H100 run's call A; docs/benchmarks.md). On the Qwen2.5-0.5B shape:
# 1. q4f16_1 and q4f32_1: prefill 128/512 and decode, native CUDA (per step and pipelined), the per-step
#    logits path encoded ahead (ARGMAX_AB=picked, DecoderModel.decodePicked) next to the plain per-step row,
#    and per-kernel GPU time of a 512-token prefill.
# 2. If time is left: per-kernel prefill time alone for the matmul / attention tile-search variants
#    (bench/gpu/build_variant.py; bench/gpu/README.md, "The f16 prefill tile search").
source bench/gpu/call_lib.sh
PREFILL_TIMES=512 ARGMAX_AB="picked ahead" NATIVE_AHEAD=1 run 5 128 'qwen2.5-0.5b-shaped-q4f16_1'; T f16
APPEND=1 PREFILL_TIMES=512 ARGMAX_AB="picked ahead" NATIVE_AHEAD=1 run 5 128 'qwen2.5-0.5b-shaped-q4f32_1'; T f32
[ $(( $(date +%s) - t0 )) -lt 330 ] && { APPEND=1 NO_BENCH=1 PREFILL_TIMES=512 run 5 8 'qwen2.5-0.5b-shaped-q4f16_1-v-*'; T f16v; }
[ $(( $(date +%s) - t0 )) -lt 450 ] && { APPEND=1 NO_BENCH=1 PREFILL_TIMES=512 run 5 8 'qwen2.5-0.5b-shaped-q4f32_1-v-*'; T f32v; }
python3 bench/gpu/summarize_call.py $OUT
