/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may not
 * use this file except in compliance with the License. You may obtain a copy
 * of the License at http://www.apache.org/licenses/LICENSE-2.0
 *
 * Hearth's reimplementation of a header that the apache-tvm 0.27 wheel omits
 * but its runtime sources include. Written from the use sites in the wheel's
 * tvm/src, tvm/include and tvm/web; only used to build the wasm runtime.
 */
/*!
 * \file tvm/support/cuda/nvtx.h
 * \brief NVTX profiling ranges. There is no NVTX in WebAssembly, so the range
 *        is a no-op object with the same interface.
 */
#ifndef TVM_SUPPORT_CUDA_NVTX_H_
#define TVM_SUPPORT_CUDA_NVTX_H_

#include <string>

namespace tvm {
namespace support {

/*!
 * \brief RAII profiling range (begins on construction, ends on destruction).
 * This build has no NVTX, so construction and destruction do nothing.
 */
class NVTXScopedRange {
 public:
  explicit NVTXScopedRange(const char* /*name*/) {}
  explicit NVTXScopedRange(const std::string& /*name*/) {}

  NVTXScopedRange(const NVTXScopedRange&) = delete;
  NVTXScopedRange& operator=(const NVTXScopedRange&) = delete;
  NVTXScopedRange(NVTXScopedRange&&) = delete;
  NVTXScopedRange& operator=(NVTXScopedRange&&) = delete;
};

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_CUDA_NVTX_H_
