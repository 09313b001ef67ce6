# The seventh H100 run's third call (session 14), carrying .gpu and bench/tmp/cuda-grid: on the Qwen2.5-0.5B
# shape, q4f16_1 and q4f32_1, the packages as the compiler builds them now (the WebGPU prefill attention grid
# of one workgroup per query tile), native CUDA as TVM ships it, and native CUDA built with the same grid
# (bench/gpu/build_cuda.py --prefill-grid chunk --out bench/tmp/cuda-grid/<quant>.so; row native-cuda+grid):
# how much of WebGPU's prefill lead is the grid, which native gains from too. Native rows only (the device
# budget was short; the WebGPU rows are call B's).
source bench/gpu/call_lib.sh
NATIVE_ONLY=1 run 5 128 'qwen2.5-0.5b-shaped-q4f*_1'; T native
for q in q4f16_1 q4f32_1; do
  p=/tmp/g/pkgs/qwen2.5-0.5b-shaped-$q
  n=$(python3 bench/gpu/native_tvm.py $p bench/tmp/cuda-grid/$q.so --device cuda --runs 5 --decode-new 128 2>$OUT/native-grid-$q.err | tail -1)
  echo "{\"package\":\"qwen2.5-0.5b-shaped-$q\",\"engine\":\"native-cuda+grid\",\"result\":${n:-null}}" >> $OUT/results.jsonl
  T grid-$q
done
python3 bench/gpu/summarize_call.py $OUT
