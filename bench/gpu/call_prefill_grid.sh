# The seventh H100 run's second call (session 14). On the Qwen2.5-0.5B shape, q4f16_1 and q4f32_1:
# 1. The packages as the compiler builds them now, with the prefill attention grid of one workgroup per query
#    tile of a chunk (models/prefill_attention_tiles.py): prefill 128/512 and decode, native CUDA per step
#    and pipelined, per-kernel GPU time of a 512-token prefill, and the per-step logits path encoded ahead
#    submitted in parts (picked, the default now) and whole (picked-whole, the first call's).
# 2. Per-kernel prefill time of the grid / tile variants (bench/gpu/build_variant.py --prefill-grid,
#    --prefill-attention): v-gridtvm (TVM's 16-wide grid, the first call's default), f16 v-gx64z8 / v-gx32z8,
#    f32 v-gx16 / v-gx32z16.
source bench/gpu/call_lib.sh
PREFILL_TIMES=512 ARGMAX_AB="picked picked-whole ahead" NATIVE_AHEAD=1 run 5 128 'qwen2.5-0.5b-shaped-q4f16_1'; T f16
APPEND=1 PREFILL_TIMES=512 ARGMAX_AB="picked picked-whole ahead" NATIVE_AHEAD=1 run 5 128 'qwen2.5-0.5b-shaped-q4f32_1'; T f32
APPEND=1 NO_BENCH=1 PREFILL_TIMES=512 run 5 8 'qwen2.5-0.5b-shaped-q4f16_1-v-*'; T f16v
APPEND=1 NO_BENCH=1 PREFILL_TIMES=512 run 5 8 'qwen2.5-0.5b-shaped-q4f32_1-v-*'; T f32v
python3 bench/gpu/summarize_call.py $OUT
