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
 * \file src/support/bytes_io.h
 * \brief In-memory streams: read from a byte buffer, append to a std::string.
 */
#ifndef TVM_SUPPORT_BYTES_IO_H_
#define TVM_SUPPORT_BYTES_IO_H_

#include <tvm/ffi/error.h>
#include <tvm/ffi/string.h>
#include <tvm/support/io.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace tvm {
namespace support {

/*!
 * \brief Read-only stream over a byte buffer.
 * \note The stream does not own the bytes: the buffer must outlive it. Binding a
 *       temporary is rejected at compile time for that reason.
 */
class BytesInStream : public Stream {
 public:
  BytesInStream(const char* data, size_t size) : data_(data), size_(size) {}
  explicit BytesInStream(const std::string& data) : BytesInStream(data.data(), data.size()) {}
  explicit BytesInStream(const ffi::Bytes& data) : BytesInStream(data.data(), data.size()) {}
  explicit BytesInStream(const ffi::String& data) : BytesInStream(data.data(), data.size()) {}
  BytesInStream(std::string&&) = delete;
  BytesInStream(ffi::Bytes&&) = delete;
  BytesInStream(ffi::String&&) = delete;

  using Stream::Read;
  using Stream::Write;

  size_t Read(void* ptr, size_t size) final {
    const size_t n = std::min(size, size_ - pos_);
    if (n != 0) std::memcpy(ptr, data_ + pos_, n);
    pos_ += n;
    return n;
  }

  size_t Write(const void* /*ptr*/, size_t /*size*/) final {
    TVM_FFI_THROW(InternalError) << "BytesInStream is read-only";
    return 0;
  }

  /*! \return The read position in bytes from the start of the buffer. */
  size_t Tell() const { return pos_; }
  /*! \brief Move the read position (clamped to the end of the buffer). */
  void Seek(size_t pos) { pos_ = std::min(pos, size_); }
  /*! \return Whether every byte has been consumed. */
  bool AtEnd() const { return pos_ == size_; }

 private:
  const char* data_;
  size_t size_;
  size_t pos_{0};
};

/*!
 * \brief Write-only stream that appends to a std::string.
 * \note The string must outlive the stream; existing content is kept.
 */
class BytesOutStream : public Stream {
 public:
  explicit BytesOutStream(std::string* buffer) : buffer_(buffer) {
    TVM_FFI_ICHECK(buffer_ != nullptr) << "BytesOutStream needs a buffer";
  }

  using Stream::Read;
  using Stream::Write;

  size_t Write(const void* ptr, size_t size) final {
    buffer_->append(static_cast<const char*>(ptr), size);
    return size;
  }

  size_t Read(void* /*ptr*/, size_t /*size*/) final {
    TVM_FFI_THROW(InternalError) << "BytesOutStream is write-only";
    return 0;
  }

 private:
  std::string* buffer_;
};

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_BYTES_IO_H_
