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
 * \file tvm/support/io.h
 * \brief Abstract binary stream with typed, endian-aware helpers.
 *
 * Subclasses implement the two raw virtual methods. The typed Read<T>/Write<T>
 * helpers dispatch to Serializer<T> (see tvm/support/serializer.h). A subclass
 * that overrides the raw methods must re-expose the helpers with
 * `using Stream::Read; using Stream::Write;` (C++ name hiding).
 */
#ifndef TVM_SUPPORT_IO_H_
#define TVM_SUPPORT_IO_H_

#include <tvm/ffi/endian.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace tvm {
namespace support {

class Stream;

/*!
 * \brief Serialization traits; specialise for every serialisable type.
 *
 * A specialisation provides
 *   static constexpr bool enabled = true;
 *   static void Write(Stream* strm, const T& data);
 *   static bool Read(Stream* strm, T* data);
 * The second parameter exists for enable_if-constrained partial specialisations.
 */
template <typename T, typename = void>
struct Serializer {
  static constexpr bool enabled = false;
};

/*! \brief Abstract binary stream. */
class Stream {
 public:
  virtual ~Stream() = default;

  /*!
   * \brief Read up to \p size raw bytes.
   * \return The number of bytes actually read (less than size only at end of stream).
   */
  virtual size_t Read(void* ptr, size_t size) = 0;

  /*!
   * \brief Write \p size raw bytes.
   * \return The number of bytes written.
   */
  virtual size_t Write(const void* ptr, size_t size) = 0;

  /*! \brief Write one value through Serializer<T>. */
  template <typename T>
  void Write(const T& data) {
    static_assert(Serializer<T>::enabled, "tvm::support::Serializer<T> is not specialised for T");
    Serializer<T>::Write(this, data);
  }

  /*! \brief Read one value through Serializer<T>; returns false on a short read. */
  template <typename T>
  bool Read(T* out_data) {
    static_assert(Serializer<T>::enabled, "tvm::support::Serializer<T> is not specialised for T");
    return Serializer<T>::Read(this, out_data);
  }

  /*!
   * \brief Write \p num_elems values (no count prefix).
   * Arithmetic element types are written as one little-endian block.
   */
  template <typename T>
  void WriteArray(const T* data, size_t num_elems) {
    if constexpr (std::is_arithmetic_v<T> && TVM_FFI_IO_NO_ENDIAN_SWAP) {
      if (num_elems != 0) this->Write(static_cast<const void*>(data), sizeof(T) * num_elems);
    } else {
      for (size_t i = 0; i < num_elems; ++i) this->Write<T>(data[i]);
    }
  }

  /*! \brief Read \p num_elems values (no count prefix); returns false on a short read. */
  template <typename T>
  bool ReadArray(T* data, size_t num_elems) {
    if constexpr (std::is_arithmetic_v<T>) {
      if (num_elems == 0) return true;
      const size_t nbytes = sizeof(T) * num_elems;
      if (this->Read(static_cast<void*>(data), nbytes) != nbytes) return false;
      if constexpr (!TVM_FFI_IO_NO_ENDIAN_SWAP) {
        if constexpr (sizeof(T) > 1) ffi::ByteSwap(data, sizeof(T), num_elems);
      }
      return true;
    } else {
      for (size_t i = 0; i < num_elems; ++i) {
        if (!this->Read<T>(data + i)) return false;
      }
      return true;
    }
  }
};

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_IO_H_
