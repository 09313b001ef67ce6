D=bench/gpu/device_run.sh
export SKIP_TORCH=1
Q='qwen2.5-0.5b-shaped-q4f32_1'
t0=$(date +%s)
SUBMIT_AB="0 64" SUBMIT_ARGMAX=ahead ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 $Q > $OUT/log.txt 2>&1
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'SmolLM2-135M-Instruct-q4f32_1' >> $OUT/log.txt 2>&1
echo "T greedy $(( $(date +%s) - t0 ))"
APPEND=1 GPU_SAMPLING_AB=1 GPU_SAMPLING_MODES="top-k" NATIVE_ONLY= bash $D 5 128 $Q >> $OUT/log.txt 2>&1
echo "T samp $(( $(date +%s) - t0 ))"
cd $OUT && tar czf logs.tgz log.txt errors.txt env.txt && rm -f log.txt errors.txt; ls
