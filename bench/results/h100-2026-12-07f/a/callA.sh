# Call A (session 12): the pipelined native reference next to the pipelined WebGPU rows, all three packages.
D=bench/gpu/device_run.sh
export SKIP_TORCH=1
t0=$(date +%s)
ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'qwen2.5-0.5b-shaped-q4f32_1' 2>&1 | tail -8
echo "T qwen32 $(( $(date +%s) - t0 ))"
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'SmolLM2-135M-Instruct-q4f32_1' 2>&1 | tail -8
echo "T smol $(( $(date +%s) - t0 ))"
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'qwen2.5-0.5b-shaped-q4f16_1' 2>&1 | tail -8
echo "T qwen16 $(( $(date +%s) - t0 ))"
cp $OUT/errors.txt $OUT/errors-A.txt 2>/dev/null
