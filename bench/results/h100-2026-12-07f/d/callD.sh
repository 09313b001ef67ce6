# Call D (session 12): after holdSubmits (pipelined steps submit once each).
D=bench/gpu/device_run.sh
export SKIP_TORCH=1
t0=$(date +%s)
ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'qwen2.5-0.5b-shaped-q4f32_1' > $OUT/log.txt 2>&1
echo "T q32 $(( $(date +%s) - t0 ))"
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'SmolLM2-135M-Instruct-q4f32_1' >> $OUT/log.txt 2>&1
echo "T smol $(( $(date +%s) - t0 ))"
APPEND=1 GPU_SAMPLING_AB=1 GPU_SAMPLING_MODES="top-k" bash $D 5 128 'qwen2.5-0.5b-shaped-q4f32_1' >> $OUT/log.txt 2>&1
echo "T samp $(( $(date +%s) - t0 ))"
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'qwen2.5-0.5b-shaped-q4f16_1' >> $OUT/log.txt 2>&1
echo "T q16 $(( $(date +%s) - t0 ))"
