#!/usr/bin/env bash
# Runs ON the GPU machine (device tool), from the repo root, with .gpu carried (bench/gpu/prepare.py):
# the embeddings table of issue 17 item 4. all-MiniLM-L6-v2, batch 1/8/32 x 128 tokens, sentences/s:
# Hearth WebGPU (sdk/scripts/embed.mjs on Dawn, NVIDIA Vulkan) per carried encoder package vs PyTorch
# CUDA (bench/gpu/embed_torch.py: sentence-transformers' pipeline, float16 and float32) on the SAME random
# weights (make_shards.py --signed), so the vectors are compared too.
# Usage: bash bench/gpu/embed_run.sh <runs>
# Writes $OUT/embed.jsonl (one JSON line per engine x package x batch) and $OUT/embed-vectors.jsonl.
set -u
RUNS=${1:-5}; WARM=3
source bench/gpu/device_setup.sh
W=$G/embed-work; mkdir -p $W
python3 - "$W" <<'EOF'
import json, sys
w = sys.argv[1]
# The texts of bench/embeddings.py: exactly 128 WordPiece tokens each ([CLS] <i> word x125 [SEP]).
json.dump([f"{i} " + "word " * 125 for i in range(32)], open(f"{w}/texts.json", "w"))
for b in (1, 8, 32):
    json.dump([f"{i} " + "word " * 125 for i in range(b)], open(f"{w}/texts-{b}.json", "w"))
json.dump([
    "A man is playing a guitar.",
    "The stock market fell sharply today after a week of rumours about interest rates and a weak jobs report.",
    "def add(a, b): return a + b",
    "WebGPU runs a sentence-embedding model on the device, without sending documents anywhere.",
], open(f"{w}/verify.json", "w"))
EOF
: > $OUT/embed.jsonl; : > $OUT/embed-vectors.jsonl
for src in $G/src/pkgs/emb/*; do
  name=$(basename $src); p=$G/emb/$name
  if [ ! -d $p ]; then mkdir -p $G/emb && cp -r $src $p && python3 bench/gpu/make_shards.py --signed $p; fi
  flags=""; case $name in *f16*) flags="enable-dawn-features=vulkan_enable_f16_on_nvidia";; esac
  for b in 1 8 32; do
    r=$(HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/embed.mjs $p --texts $W/texts-$b.json --batch $b \
        --repeat $((WARM + RUNS)) --no-vectors 2>$OUT/embed-$name-$b.err | tail -1)
    echo "{\"package\":\"$name\",\"engine\":\"hearth-webgpu-node-vulkan\",\"batch\":$b,\"warmup\":$WARM,\"result\":${r:-null}}" >> $OUT/embed.jsonl
  done
  HEARTH_DAWN_FLAGS="$flags" $G/node $G/js/embed.mjs $p --texts $W/verify.json 2>>$OUT/embed-$name-1.err \
    | python3 -c "import json,sys; print(json.dumps({'package': '$name', 'engine': 'hearth-webgpu-node-vulkan', 'lines': [json.loads(l) for l in sys.stdin if l.strip()]}))" >> $OUT/embed-vectors.jsonl
  tail -3 $OUT/embed.jsonl | cut -c1-300
done
# PyTorch on the q0f32 package's weights (the only float32 copy: quantized packages hold other values).
ref=$(ls -d $G/emb/*q0f32 | head -1)
for dt in float16 float32; do
  t=$(python3 bench/gpu/embed_torch.py $ref --hf-config $ref/hf-config.json --dtype $dt --runs $RUNS --warmup $WARM \
      --texts $W/texts.json --verify $W/verify.json 2>$OUT/embed-torch-$dt.err | tail -1)
  echo "${t:-null}" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); v=(r or {}).pop('vectors', None); print(json.dumps({'package':'$(basename $ref)','engine':'torch-cuda-$dt','result':r}))" >> $OUT/embed.jsonl
  echo "${t:-null}" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()) or {}; print(json.dumps({'package':'$(basename $ref)','engine':'torch-cuda-$dt','vectors':r.get('vectors')}))" >> $OUT/embed-vectors.jsonl
  tail -1 $OUT/embed.jsonl | cut -c1-300
done
for f in $OUT/embed-*.err; do echo "### $f"; tail -15 $f; done > $OUT/embed-errors.txt 2>/dev/null; rm -f $OUT/embed-*.err
