# Sourced by the bench/gpu/call_*.sh device calls: `run <device_run.sh args>` appends device_run.sh's log
# and errors to $OUT/log.txt and $OUT/errs.txt (so one call's sections share them), `T <label>` logs the
# seconds since the call began. PyTorch rows are skipped (SKIP_TORCH=1): these calls compare WebGPU and native.
D=bench/gpu/device_run.sh
export SKIP_TORCH=1
t0=$(date +%s)
T() { echo "T $1 $(( $(date +%s) - t0 ))" | tee -a $OUT/log.txt; }
: > $OUT/errs.txt
run() { bash $D "$@" >> $OUT/log.txt 2>&1; cat $OUT/errors.txt >> $OUT/errs.txt 2>/dev/null; rm -f $OUT/errors.txt; }
