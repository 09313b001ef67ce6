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
 * \file src/support/ring_buffer.h
 * \brief Growable FIFO byte ring buffer (used by the RPC endpoint).
 */
#ifndef TVM_SUPPORT_RING_BUFFER_H_
#define TVM_SUPPORT_RING_BUFFER_H_

#include <tvm/ffi/error.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace tvm {
namespace support {

/*!
 * \brief A FIFO byte queue stored in a circular buffer that grows on demand.
 * Not thread-safe.
 */
class RingBuffer {
 public:
  /*! \brief Initial (and minimum) capacity in bytes. */
  static constexpr size_t kInitCapacity = 4096;
  /*! \brief Capacity above which an almost empty buffer is shrunk by Reserve. */
  static constexpr size_t kShrinkThreshold = 1 << 20;

  RingBuffer() : ring_(kInitCapacity) {}

  /*! \return Number of bytes that can be read. */
  size_t bytes_available() const { return bytes_available_; }
  /*! \return Current capacity in bytes. */
  size_t capacity() const { return ring_.size(); }

  /*!
   * \brief Make room for at least \p n bytes in total (readable bytes included).
   *        Keeps the readable bytes. May also release memory of a large buffer
   *        that holds little data.
   */
  void Reserve(size_t n) {
    if (n > ring_.size()) {
      Reallocate(std::max(n, ring_.size() * 2));
    } else if (ring_.size() > kShrinkThreshold && n * 4 < ring_.size() &&
               bytes_available_ * 4 < ring_.size()) {
      Reallocate(std::max({n, bytes_available_, kInitCapacity}));
    }
  }

  /*! \brief Pop exactly \p size bytes into \p data; they must be available. */
  void Read(void* data, size_t size) {
    TVM_FFI_ICHECK_LE(size, bytes_available_) << "RingBuffer: reading more bytes than available";
    if (size == 0) return;
    char* out = static_cast<char*>(data);
    const size_t first = std::min(size, ring_.size() - head_);
    std::memcpy(out, ring_.data() + head_, first);
    std::memcpy(out + first, ring_.data(), size - first);
    Consume(size);
  }

  /*! \brief Append \p size bytes from \p data, growing the buffer as needed. */
  void Write(const void* data, size_t size) {
    if (size == 0) return;
    Reserve(bytes_available_ + size);
    const char* in = static_cast<const char*>(data);
    const size_t tail = Tail();
    const size_t first = std::min(size, ring_.size() - tail);
    std::memcpy(ring_.data() + tail, in, first);
    std::memcpy(ring_.data(), in + first, size - first);
    bytes_available_ += size;
  }

  /*!
   * \brief Pop up to \p max_nbytes bytes by handing a contiguous readable region
   *        to \p frecv, a callable `size_t(const void* data, size_t size)` that
   *        returns how many of those bytes it consumed.
   * \return The number of bytes consumed (0 when nothing was available or taken).
   */
  template <typename FRecv>
  size_t ReadWithCallback(FRecv frecv, size_t max_nbytes) {
    const size_t size = std::min({max_nbytes, bytes_available_, ring_.size() - head_});
    if (size == 0) return 0;
    const size_t taken = frecv(static_cast<const void*>(ring_.data() + head_), size);
    TVM_FFI_ICHECK_LE(taken, size) << "RingBuffer: callback consumed more bytes than offered";
    Consume(taken);
    return taken;
  }

  /*!
   * \brief Append up to \p max_nbytes bytes produced by \p fsend, a callable
   *        `size_t(void* data, size_t size)` that fills a contiguous writable
   *        region and returns how many bytes it wrote.
   * \return The number of bytes appended (0 means the producer had nothing).
   */
  template <typename FSend>
  size_t WriteWithCallback(FSend fsend, size_t max_nbytes) {
    if (max_nbytes == 0) return 0;
    Reserve(bytes_available_ + max_nbytes);
    const size_t tail = Tail();
    const size_t size = std::min(max_nbytes, ring_.size() - tail);
    const size_t written = fsend(static_cast<void*>(ring_.data() + tail), size);
    TVM_FFI_ICHECK_LE(written, size) << "RingBuffer: callback wrote more bytes than offered";
    bytes_available_ += written;
    return written;
  }

 private:
  size_t Tail() const {
    const size_t tail = head_ + bytes_available_;
    return tail < ring_.size() ? tail : tail - ring_.size();
  }

  void Consume(size_t n) {
    bytes_available_ -= n;
    head_ += n;
    if (head_ >= ring_.size()) head_ -= ring_.size();
    if (bytes_available_ == 0) head_ = 0;
  }

  /*! \brief Move the readable bytes to the front of a buffer of \p new_capacity. */
  void Reallocate(size_t new_capacity) {
    std::vector<char> next(new_capacity);
    const size_t first = std::min(bytes_available_, ring_.size() - head_);
    std::memcpy(next.data(), ring_.data() + head_, first);
    std::memcpy(next.data() + first, ring_.data(), bytes_available_ - first);
    ring_.swap(next);
    head_ = 0;
  }

  std::vector<char> ring_;
  size_t head_{0};
  size_t bytes_available_{0};
};

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_RING_BUFFER_H_
