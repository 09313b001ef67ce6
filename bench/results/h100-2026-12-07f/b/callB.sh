# Call B (session 12): a CPU profile of pipelined decode, sampled decode pipelined, submit cadence when pipelined,
# and a second sample of the greedy rows.
D=bench/gpu/device_run.sh
export SKIP_TORCH=1
t0=$(date +%s)
Q='qwen2.5-0.5b-shaped-q4f32_1'
# 1. profile: every WebGPU row of this invocation decodes pipelined
NATIVE_ONLY= HEARTH_GPU_ARGMAX=ahead PROFILE=1 bash $D 5 128 $Q > $OUT/log-prof.txt 2>&1
mv $OUT/results.jsonl $OUT/results-prof.jsonl; cp $OUT/errors.txt $OUT/errors-prof.txt
echo "T prof $(( $(date +%s) - t0 ))"
# 2. sampling: host / gpu / ahead for top-k and top-p
GPU_SAMPLING_AB=1 GPU_SAMPLING_MODES="top-k top-p" bash $D 5 128 $Q > $OUT/log-samp.txt 2>&1
echo "T samp $(( $(date +%s) - t0 ))"
# 3. submit cadence when pipelined
APPEND=1 SUBMIT_AB="0 64" SUBMIT_ARGMAX=ahead bash $D 5 128 $Q > $OUT/log-sub.txt 2>&1
echo "T sub $(( $(date +%s) - t0 ))"
# 4. second sample of the greedy rows (f32 + SmolLM2)
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 $Q > $OUT/log-rep.txt 2>&1
APPEND=1 ARGMAX_AB="ahead" NATIVE_AHEAD=1 bash $D 5 128 'SmolLM2-135M-Instruct-q4f32_1' >> $OUT/log-rep.txt 2>&1
echo "T rep $(( $(date +%s) - t0 ))"
ls -la $OUT
