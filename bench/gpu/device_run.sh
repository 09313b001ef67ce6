#!/usr/bin/env bash
# Runs ON the H200 machine (device tool), from the repo root, with .gpu carried (bench/gpu/prepare.py).
# Usage: bash bench/gpu/device_run.sh <runs> <decode_new> <package-glob>   e.g. 5 128 'qwen*'
# Env: DISPATCH_AB="tvmjs hearth-tvmjs-args" adds a WebGPU run per launch-path mode (1: tvmjs, its own launch
#      encoding; hearth-tvmjs-args: Hearth's path with tvmjs's generic argument decoding); ARGMAX_AB=1 one with the greedy
#      argmax on the GPU (ARGMAX_AB="1 ahead picked": also one with the steps pipelined, decodeGreedy,
#      and one reading the logits back with each step encoded ahead of its token, decodePicked); GPU_SAMPLING_AB=1 adds, per sampling mode (GPU_SAMPLING_MODES, default all six of
#      bench-llm.mjs's SAMPLING_MODES), a decode run sampling on the host and one sampling on the GPU
#      (engines webgpu-node-vulkan+sample-<mode>-host / -gpu; decode only, 16-token prefill);
#      PLAIN_AB=1 adds a WebGPU run of the plain library (HEARTH_WEBGPU_BUILD=plain, engine webgpu-node-vulkan+plain);
#      NATIVE_AHEAD=1 adds a native run with its decode steps pipelined (native_tvm.py --pipelined);
#      SKIP_TORCH=1 skips PyTorch; NO_BENCH=1 skips the plain WebGPU bench run (the optional ones still run); NATIVE_ONLY=1 skips every WebGPU run (native and torch rows only);
#      EXTRA_FLAGS=<dawn toggles> adds a WebGPU run with those toggles;
#      SUBMIT_AB="16 32 64" adds a WebGPU run per value with HEARTH_SUBMIT_EVERY=<n> (submit every n launches,
#      webgpu-dispatch.ts submitEvery; the plain run uses the SDK default; SUBMIT_ARGMAX=ahead: pipelined);
#      PROFILE=1 adds a WebGPU decode run under `node --cpu-prof` ($OUT/prof-<package>.cpuprofile; read it with
#      bench/gpu/cpuprofile_top.py);
#      KERNEL_TIMES=1 adds per-kernel GPU time per decode token (kernel-launches.mjs --gpu-time, timestamp
#      queries, Dawn's timestamp quantization off) to $OUT/kernel-times.jsonl;
#      PREFILL_TIMES=1 (or a prompt length, default 128) adds per-kernel GPU time of one prefill
#      (kernel-launches.mjs --prefill-gpu-time) to $OUT/kernel-times.jsonl (rows with "mode": "prefill");
#      DISPATCH_FLOOR=1 first measures Dawn's GPU cost per dispatch apart from the kernel's work
#      (sdk/scripts/dispatch-floor.mjs) into $OUT/dispatch-floor.json.
# Writes $OUT/results.jsonl (one JSON line per engine x package) and $OUT/env.txt.
set -u
RUNS=${1:-5}; NEW=${2:-128}; GLOB=${3:-*}
source bench/gpu/device_setup.sh  # G=/tmp/g: node, js, site, packages unpacked; $OUT/env.txt
cat $OUT/env.txt
[ -n "${APPEND:-}" ] || : > $OUT/results.jsonl  # APPEND=1: keep an earlier call's rows
if [ -n "${DISPATCH_FLOOR:-}" ]; then
  $G/node $G/js/dispatch-floor.mjs --n 512 --reps 5 > $OUT/dispatch-floor.json 2>$OUT/dispatch-floor.err
  cat $OUT/dispatch-floor.json
fi
for src in $G/src/pkgs/$GLOB; do
  name=$(basename $src); p=$G/pkgs/$name
  [ "$name" = emb ] && continue  # the encoder packages: bench/gpu/embed_run.sh
  if [ ! -d $p ]; then mkdir -p $G/pkgs && cp -r $src $p && python3 bench/gpu/make_shards.py $p; fi
  ctx=$(python3 -c "import json;print(json.load(open('$p/mlc-chat-config.json'))['context_window_size'])")
  echo "== $name (ctx $ctx)"
  # f16 packages need Dawn's vulkan_enable_f16_on_nvidia toggle (off by default, also in Chrome).
  flags=""; case $name in *f16*) flags="enable-dawn-features=vulkan_enable_f16_on_nvidia";; esac
  # NATIVE_ONLY=1: no WebGPU run for these packages (e.g. a base package whose native row is the reference).
  if [ -z "${NATIVE_ONLY:-}" ]; then
  if [ -z "${NO_BENCH:-}" ]; then  # NO_BENCH=1: only the optional runs below (e.g. PREFILL_TIMES of variants)
  w=$(HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW 2>$OUT/webgpu-$name.err | tail -1)
  echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan\",\"result\":${w:-null}}" >> $OUT/results.jsonl
  fi
  # Optional A/B run with tvmjs's own kernel-launch encoding (sdk/src/runtime/webgpu-dispatch.ts is the default).
  # DISPATCH_AB="tvmjs hearth-tvmjs-args" (1 = tvmjs): a WebGPU run per launch-path mode (HEARTH_DISPATCH).
  for mode in ${DISPATCH_AB:-}; do
    [ "$mode" = 1 ] && mode=tvmjs
    w=$(HEARTH_DISPATCH=$mode HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW 2>$OUT/webgpu-$mode-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan+dispatch-$mode\",\"result\":${w:-null}}" >> $OUT/results.jsonl
  done
  # Optional runs submitting the queued launches every n launches (host encoding overlaps GPU execution).
  # SUBMIT_ARGMAX=ahead: those runs decode pipelined (HEARTH_GPU_ARGMAX=ahead; engine ...-ahead).
  for n in ${SUBMIT_AB:-}; do
    sfx=""; [ -n "${SUBMIT_ARGMAX:-}" ] && sfx="-$SUBMIT_ARGMAX"
    w=$(HEARTH_GPU_ARGMAX=${SUBMIT_ARGMAX:-0} HEARTH_SUBMIT_EVERY=$n HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW 2>$OUT/webgpu-submit$n-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan+submit-every-$n$sfx\",\"result\":${w:-null}}" >> $OUT/results.jsonl
  done
  # Optional run with the package's plain WebGPU library (the SDK loads webgpu-fused on a GPU): PLAIN_AB=1.
  if [ -n "${PLAIN_AB:-}" ]; then
    w=$(HEARTH_WEBGPU_BUILD=plain HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW 2>$OUT/webgpu-plain-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan+plain\",\"result\":${w:-null}}" >> $OUT/results.jsonl
  fi
  # Optional run with the greedy argmax on the GPU (only the token id read back per decode step).
  # ARGMAX_AB="1 ahead": one run per value (ahead: the decode run is one pipelined DecoderModel.decodeGreedy).
  # picked-whole: picked with each step submitted whole once its token is written (HEARTH_SPLIT_DEFERRED=0).
  for a in ${ARGMAX_AB:-}; do
    sfx=""; [ "$a" != 1 ] && sfx="-$a"
    g=$a; split=1; [ "$a" = picked-whole ] && { g=picked; split=0; }
    w=$(HEARTH_GPU_ARGMAX=$g HEARTH_SPLIT_DEFERRED=$split HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW 2>$OUT/webgpu-argmax$sfx-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan+gpu-argmax$sfx\",\"result\":${w:-null}}" >> $OUT/results.jsonl
  done
  # Optional A/B of the sampler: host (logits read back) vs GPU (sdk/src/runtime/gpu-sampler.ts, token read back).
  if [ -n "${GPU_SAMPLING_AB:-}" ]; then
    for mode in ${GPU_SAMPLING_MODES:-greedy temperature top-k top-p top-k-top-p penalties}; do
      # ahead: pipelined (DecoderModel.decodeSampled), for the modes without penalties
      # picked: sampled on the host, steps encoded ahead (DecoderModel.decodePicked)
      wheres="host gpu ahead picked"; [ $mode = penalties ] && wheres="host gpu picked"
      for where in $wheres; do
        g=0; [ $where = gpu ] && g=1; [ $where = ahead ] && g=ahead; [ $where = picked ] && g=picked
        w=$(HEARTH_SAMPLING=$mode HEARTH_GPU_SAMPLING=$g HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW --prefill 16 --ttft-prompt 16 2>$OUT/webgpu-sample-$mode-$where-$name.err | tail -1)
        echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan+sample-$mode-$where\",\"result\":${w:-null}}" >> $OUT/results.jsonl
      done
    done
  fi
  # Optional second WebGPU run with extra Dawn toggles (attribution only: browsers keep these off).
  if [ -n "${EXTRA_FLAGS:-}" ]; then
    w=$(HEARTH_DAWN_FLAGS="enable-dawn-features=$EXTRA_FLAGS${flags:+,vulkan_enable_f16_on_nvidia}" $G/node $G/js/bench-llm.mjs $p --runs $RUNS --decode-new $NEW 2>$OUT/webgpu-x-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"webgpu-node-vulkan+$EXTRA_FLAGS\",\"result\":${w:-null}}" >> $OUT/results.jsonl
  fi
  if [ -n "${PROFILE:-}" ]; then
    mkdir -p $OUT/prof-tmp
    HEARTH_DAWN_FLAGS="$flags" $G/node --cpu-prof --cpu-prof-dir=$OUT/prof-tmp $G/js/bench-llm.mjs $p --runs 2 --prefill 16 --decode-new 256 --decode-prompt 16 --ttft-prompt 16 >/dev/null 2>$OUT/prof-$name.err
    mv "$(ls -S $OUT/prof-tmp/*.cpuprofile | head -1)" $OUT/prof-$name.cpuprofile; rm -rf $OUT/prof-tmp
  fi
  if [ -n "${KERNEL_TIMES:-}" ]; then
    k=$(HEARTH_DAWN_FLAGS="disable-dawn-features=timestamp_quantization${flags:+ $flags}" $G/node $G/js/kernel-launches.mjs $p --steps 32 --prompt 64 --gpu-time 2>$OUT/ktime-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"result\":${k:-null}}" >> $OUT/kernel-times.jsonl
  fi
  if [ -n "${PREFILL_TIMES:-}" ]; then
    pt=$PREFILL_TIMES; [ "$pt" = 1 ] && pt=128
    k=$(HEARTH_DAWN_FLAGS="disable-dawn-features=timestamp_quantization${flags:+ $flags}" $G/node $G/js/kernel-launches.mjs $p --prefill-gpu-time $pt 2>$OUT/ptime-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"mode\":\"prefill\",\"result\":${k:-null}}" >> $OUT/kernel-times.jsonl
  fi
  fi  # NATIVE_ONLY
  # The -fused2*, -fkv*, -prefill-* and -v-* copies carry the base package's CUDA library (prepare.py): their native
  # row would repeat it.
  case $name in *-fused2*|*-fkv*|*-prefill-*|*-v-*) ;; *)
    n=$(python3 bench/gpu/native_tvm.py $p $p/cuda.so --device cuda --runs $RUNS --decode-new $NEW 2>$OUT/native-$name.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"native-cuda\",\"result\":${n:-null}}" >> $OUT/results.jsonl
    # NATIVE_AHEAD=1: also native with its decode steps pipelined (argmax on the device, no host sync per
    # step: native_tvm.py --pipelined), the reference for the WebGPU "ahead" rows.
    if [ -n "${NATIVE_AHEAD:-}" ]; then
      n=$(python3 bench/gpu/native_tvm.py $p $p/cuda.so --device cuda --runs $RUNS --decode-new $NEW --pipelined 2>$OUT/native-ahead-$name.err | tail -1)
      echo "{\"package\":\"$name\",\"engine\":\"native-cuda+pipelined\",\"result\":${n:-null}}" >> $OUT/results.jsonl
    fi;;
  esac
  # torch does not depend on Hearth's compiler: the *-unfused / *-fused copies (bench/gpu/build_unfused.py) skip it.
  notorch=${SKIP_TORCH:-}; case $name in *-unfused|*-fused|*-fused2*|*-fkv*|*-prefill-*|*-v-*) notorch=1;; esac
  [ -n "$notorch" ] || t=$(python3 bench/gpu/torch_ref.py $p/hf-config.json --device cuda --runs $RUNS --decode-new $NEW --max-seq $ctx 2>$OUT/torch-$name.err | tail -1)
  [ -n "$notorch" ] || echo "{\"package\":\"$name\",\"engine\":\"torch-eager-cuda\",\"result\":${t:-null}}" >> $OUT/results.jsonl
  tail -4 $OUT/results.jsonl | cut -c1-400
done
# Error logs are many small files; keep only the tails, in one file (8 files at most come back).
for f in $OUT/*.err; do echo "### $f"; tail -15 $f; done > $OUT/errors.txt 2>/dev/null; rm -f $OUT/*.err
