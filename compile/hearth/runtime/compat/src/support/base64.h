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
 * \file src/support/base64.h
 * \brief Streams that encode to / decode from standard base64 (RFC 4648, with
 *        '=' padding) on top of another stream. The codec itself is the one in
 *        tvm/ffi/extra/base64.h; these classes only do the streaming.
 *
 * A base64 stream is a run of base64 characters; it ends at end of input, at
 * whitespace, or after '=' padding (matching what TVM writes into JSON).
 */
#ifndef TVM_SUPPORT_BASE64_H_
#define TVM_SUPPORT_BASE64_H_

#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/base64.h>
#include <tvm/ffi/string.h>
#include <tvm/support/io.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>

namespace tvm {
namespace support {

/*! \brief Decodes base64 text read from an underlying stream. */
class Base64InStream : public Stream {
 public:
  explicit Base64InStream(Stream* source) : source_(source) {
    TVM_FFI_ICHECK(source_ != nullptr) << "Base64InStream needs a source stream";
  }

  /*!
   * \brief Skip whitespace before the encoded text and reset the decoder.
   * \note Call once before the first Read (kept for API compatibility).
   */
  void InitPosition() {
    decoded_.clear();
    decoded_pos_ = 0;
    finished_ = false;
    int ch;
    do {
      ch = NextChar();
    } while (ch != EOF && std::isspace(ch));
    pushback_ = ch;
  }

  /*! \return Whether all decoded bytes were consumed and the encoded text has ended. */
  bool IsEOF() {
    if (decoded_pos_ < decoded_.size()) return false;
    if (!finished_) Refill();
    return decoded_pos_ >= decoded_.size();
  }

  using Stream::Read;
  using Stream::Write;

  size_t Read(void* ptr, size_t size) final {
    char* out = static_cast<char*>(ptr);
    size_t done = 0;
    while (done < size) {
      if (decoded_pos_ >= decoded_.size()) {
        if (finished_ || !Refill()) break;
      }
      const size_t n = std::min(size - done, decoded_.size() - decoded_pos_);
      std::memcpy(out + done, decoded_.data() + decoded_pos_, n);
      decoded_pos_ += n;
      done += n;
    }
    return done;
  }

  size_t Write(const void* /*ptr*/, size_t /*size*/) final {
    TVM_FFI_THROW(InternalError) << "Base64InStream is read-only";
    return 0;
  }

 private:
  /*! \brief Encoded characters decoded per refill (a multiple of 4). */
  static constexpr size_t kChunkChars = 4096;

  int NextChar() {
    if (pushback_ != kNoPushback) {
      int ch = pushback_;
      pushback_ = kNoPushback;
      return ch;
    }
    if (raw_pos_ >= raw_.size()) {
      raw_.resize(kChunkChars);
      raw_.resize(source_->Read(&raw_[0], raw_.size()));
      raw_pos_ = 0;
      if (raw_.empty()) return EOF;
    }
    return static_cast<unsigned char>(raw_[raw_pos_++]);
  }

  /*! \brief Decode the next chunk; returns false when no more data is available. */
  bool Refill() {
    std::string encoded;
    encoded.reserve(kChunkChars);
    while (!finished_ && encoded.size() < kChunkChars) {
      int ch = NextChar();
      if (ch == EOF || std::isspace(ch)) {
        finished_ = true;
        break;
      }
      TVM_FFI_ICHECK(IsBase64Char(ch)) << "invalid base64 character (code " << ch << ")";
      encoded.push_back(static_cast<char>(ch));
      if (ch == '=') {
        // Padding ends the text: "xxx=" or "xx==".
        const size_t pos_in_group = encoded.size() % 4;
        TVM_FFI_ICHECK(pos_in_group == 0 || pos_in_group == 3) << "invalid base64 padding";
        if (pos_in_group == 3) {
          TVM_FFI_ICHECK_EQ(NextChar(), '=') << "invalid base64 padding";
          encoded.push_back('=');
        }
        finished_ = true;
      }
    }
    TVM_FFI_ICHECK_EQ(encoded.size() % 4, 0U)
        << "invalid base64 input: length is not a multiple of 4";
    decoded_.clear();
    decoded_pos_ = 0;
    if (encoded.empty()) return false;
    ffi::Bytes bytes = ffi::Base64Decode(TVMFFIByteArray{encoded.data(), encoded.size()});
    decoded_.assign(bytes.data(), bytes.size());
    return !decoded_.empty();
  }

  static bool IsBase64Char(int ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/' || ch == '=';
  }

  static constexpr int kNoPushback = -2;

  Stream* source_;
  std::string raw_;
  size_t raw_pos_{0};
  int pushback_{kNoPushback};
  std::string decoded_;
  size_t decoded_pos_{0};
  bool finished_{false};
};

/*! \brief Encodes written bytes as base64 text into an underlying stream. */
class Base64OutStream : public Stream {
 public:
  explicit Base64OutStream(Stream* sink) : sink_(sink) {
    TVM_FFI_ICHECK(sink_ != nullptr) << "Base64OutStream needs a sink stream";
  }

  using Stream::Read;
  using Stream::Write;

  size_t Write(const void* ptr, size_t size) final {
    pending_.append(static_cast<const char*>(ptr), size);
    if (pending_.size() >= kChunkBytes) Flush(/*final=*/false);
    return size;
  }

  size_t Read(void* /*ptr*/, size_t /*size*/) final {
    TVM_FFI_THROW(InternalError) << "Base64OutStream is write-only";
    return 0;
  }

  /*!
   * \brief Encode the remaining bytes (with '=' padding) and end the base64 text.
   * \param endch A character to append after the text, or EOF for none.
   */
  void Finish(int endch = EOF) {
    Flush(/*final=*/true);
    if (endch != EOF) {
      char ch = static_cast<char>(endch);
      sink_->Write(&ch, 1);
    }
  }

 private:
  /*! \brief Bytes encoded per flush (a multiple of 3, so no padding mid-stream). */
  static constexpr size_t kChunkBytes = 3 * 1024;

  void Flush(bool final) {
    const size_t n = final ? pending_.size() : pending_.size() / 3 * 3;
    if (n == 0) return;
    ffi::String text = ffi::Base64Encode(TVMFFIByteArray{pending_.data(), n});
    sink_->Write(text.data(), text.size());
    pending_.erase(0, n);
  }

  Stream* sink_;
  std::string pending_;
};

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_BASE64_H_
