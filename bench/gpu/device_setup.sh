# Sourced ON the GPU machine by device_run.sh and embed_run.sh (repo root, .gpu carried): unpacks what
# bench/gpu/prepare.py bundled into G=/tmp/g and writes $OUT/env.txt. Idempotent.
G=/tmp/g; mkdir -p $G
for f in .gpu/debs/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
[ -x $G/node ] || { xz -dc .gpu/node.xz > $G/node && chmod +x $G/node; }
[ -d $G/js ] || tar xJf .gpu/js.tar.xz -C $G
[ -d $G/site ] || tar xJf .gpu/site.tar.xz -C $G
rm -rf $G/src && mkdir -p $G/src && tar xJf .gpu/pkgs.tar.xz -C $G/src
export PYTHONPATH=$G/site LD_LIBRARY_PATH=$G/site/tvm/lib:$G/site/tvm_ffi/lib:${LD_LIBRARY_PATH:-}
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv; nproc; python3 --version;
  python3 -c 'import torch;print("torch", torch.__version__, torch.cuda.get_device_name())'; $G/node --version; } > $OUT/env.txt 2>&1
