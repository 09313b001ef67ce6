#!/usr/bin/env bash
# Runs ON the H200 machine (device tool), with .gpu carried: a CPU profile (node --cpu-prof) of the WebGPU
# decode loop of one package, to attribute the host-side time per token. Usage:
#   bash bench/gpu/profile_run.sh <package-name> [decode_new]      e.g. qwen2.5-0.5b-shaped-q4f32_1 512
# Writes $OUT/*.cpuprofile (summarise with bench/gpu/profile_summary.py) and $OUT/result.json.
set -eu
NAME=$1; NEW=${2:-512}
G=/tmp/g; mkdir -p $G
for f in .gpu/debs/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -x $G/node ] || { xz -dc .gpu/node.xz > $G/node && chmod +x $G/node; }
rm -rf $G/js && tar xJf .gpu/js.tar.xz -C $G
rm -rf $G/src && mkdir -p $G/src && tar xJf .gpu/pkgs.tar.xz -C $G/src
p=$G/pkgs/$NAME
if [ ! -d $p ]; then mkdir -p $G/pkgs && cp -r $G/src/pkgs/$NAME $p && python3 bench/gpu/make_shards.py $p; fi
flags=""; case $NAME in *f16*) flags="enable-dawn-features=vulkan_enable_f16_on_nvidia";; esac
HEARTH_DAWN_FLAGS="$flags" $G/node --cpu-prof --cpu-prof-dir=$OUT --cpu-prof-interval 200 $G/js/bench-llm.mjs $p \
  --runs 1 --prefill 16 --ttft-prompt 16 --decode-new $NEW > $OUT/result.json 2> $OUT/stderr.txt
tail -c 600 $OUT/result.json
