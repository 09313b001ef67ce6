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
 * \file tvm/support/serializer.h
 * \brief Serializer<T> specialisations for tvm::support::Stream.
 *
 * Wire format (must match the native libtvm that writes executables and device
 * modules on the host, so that they load in wasm):
 *  - arithmetic values: their bytes in little-endian order, sizeof(T) bytes;
 *  - enums: as their underlying integer type;
 *  - std::string, ffi::String, ffi::Bytes: uint64 byte count, then the bytes;
 *  - std::vector, ffi::Array: uint64 element count, then each element;
 *  - std::unordered_map, ffi::Map: uint64 entry count, then key, value per entry;
 *  - std::pair: first, then second;
 *  - DLDataType: uint8 code, uint8 bits, uint16 lanes;
 *  - DLDevice: int32 device_type, int32 device_id.
 * Types whose size differs between wasm32 and x86-64 (size_t, long) must not be
 * written directly by portable formats; the callers in TVM use fixed-width types.
 */
#ifndef TVM_SUPPORT_SERIALIZER_H_
#define TVM_SUPPORT_SERIALIZER_H_

#include <dlpack/dlpack.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/map.h>
#include <tvm/ffi/endian.h>
#include <tvm/ffi/string.h>
#include <tvm/support/io.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tvm {
namespace support {

namespace detail {

/*! \brief Write a uint64 element/byte count. */
inline void WriteCount(Stream* strm, size_t count) {
  uint64_t n = static_cast<uint64_t>(count);
  if constexpr (!TVM_FFI_IO_NO_ENDIAN_SWAP) ffi::ByteSwap(&n, sizeof(n), 1);
  strm->Write(static_cast<const void*>(&n), sizeof(n));
}

/*! \brief Read a uint64 count; fails if it does not fit in size_t on this platform. */
inline bool ReadCount(Stream* strm, size_t* count) {
  uint64_t n = 0;
  if (strm->Read(static_cast<void*>(&n), sizeof(n)) != sizeof(n)) return false;
  if constexpr (!TVM_FFI_IO_NO_ENDIAN_SWAP) ffi::ByteSwap(&n, sizeof(n), 1);
  if (n > static_cast<uint64_t>(SIZE_MAX)) return false;
  *count = static_cast<size_t>(n);
  return true;
}

/*! \brief Write a count-prefixed byte string. */
inline void WriteBytes(Stream* strm, const char* data, size_t size) {
  WriteCount(strm, size);
  if (size != 0) strm->Write(static_cast<const void*>(data), size);
}

/*! \brief Read a count-prefixed byte string. */
inline bool ReadBytes(Stream* strm, std::string* out) {
  size_t size = 0;
  if (!ReadCount(strm, &size)) return false;
  out->resize(size);
  if (size == 0) return true;
  return strm->Read(static_cast<void*>(&(*out)[0]), size) == size;
}

}  // namespace detail

/*! \brief Arithmetic types (integers, floating point, bool, char). */
template <typename T>
struct Serializer<T, std::enable_if_t<std::is_arithmetic_v<T>>> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const T& data) {
    if constexpr (TVM_FFI_IO_NO_ENDIAN_SWAP) {
      strm->Write(static_cast<const void*>(&data), sizeof(T));
    } else {
      T copy = data;
      ffi::ByteSwap(&copy, sizeof(T), 1);
      strm->Write(static_cast<const void*>(&copy), sizeof(T));
    }
  }

  static bool Read(Stream* strm, T* data) {
    if (strm->Read(static_cast<void*>(data), sizeof(T)) != sizeof(T)) return false;
    if constexpr (!TVM_FFI_IO_NO_ENDIAN_SWAP) ffi::ByteSwap(data, sizeof(T), 1);
    return true;
  }
};

/*! \brief Enumerations, as their underlying integer type. */
template <typename T>
struct Serializer<T, std::enable_if_t<std::is_enum_v<T>>> {
  static constexpr bool enabled = true;
  using Underlying = std::underlying_type_t<T>;

  static void Write(Stream* strm, const T& data) {
    Serializer<Underlying>::Write(strm, static_cast<Underlying>(data));
  }

  static bool Read(Stream* strm, T* data) {
    Underlying value{};
    if (!Serializer<Underlying>::Read(strm, &value)) return false;
    *data = static_cast<T>(value);
    return true;
  }
};

template <>
struct Serializer<std::string> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const std::string& data) {
    detail::WriteBytes(strm, data.data(), data.size());
  }

  static bool Read(Stream* strm, std::string* data) { return detail::ReadBytes(strm, data); }
};

template <>
struct Serializer<ffi::String> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const ffi::String& data) {
    detail::WriteBytes(strm, data.data(), data.size());
  }

  static bool Read(Stream* strm, ffi::String* data) {
    std::string buffer;
    if (!detail::ReadBytes(strm, &buffer)) return false;
    *data = ffi::String(std::move(buffer));
    return true;
  }
};

template <>
struct Serializer<ffi::Bytes> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const ffi::Bytes& data) {
    detail::WriteBytes(strm, data.data(), data.size());
  }

  static bool Read(Stream* strm, ffi::Bytes* data) {
    std::string buffer;
    if (!detail::ReadBytes(strm, &buffer)) return false;
    *data = ffi::Bytes(std::move(buffer));
    return true;
  }
};

template <typename T>
struct Serializer<std::vector<T>> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const std::vector<T>& data) {
    detail::WriteCount(strm, data.size());
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      strm->WriteArray(data.data(), data.size());
    } else {
      for (const auto& item : data) Serializer<T>::Write(strm, item);
    }
  }

  static bool Read(Stream* strm, std::vector<T>* data) {
    size_t size = 0;
    if (!detail::ReadCount(strm, &size)) return false;
    data->clear();
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      data->resize(size);
      return strm->ReadArray(data->data(), size);
    } else {
      data->reserve(size);
      for (size_t i = 0; i < size; ++i) {
        T item{};
        if (!Serializer<T>::Read(strm, &item)) return false;
        data->push_back(std::move(item));
      }
      return true;
    }
  }
};

template <typename A, typename B>
struct Serializer<std::pair<A, B>> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const std::pair<A, B>& data) {
    Serializer<A>::Write(strm, data.first);
    Serializer<B>::Write(strm, data.second);
  }

  static bool Read(Stream* strm, std::pair<A, B>* data) {
    return Serializer<A>::Read(strm, &data->first) && Serializer<B>::Read(strm, &data->second);
  }
};

template <typename K, typename V, typename Hash, typename Eq, typename Alloc>
struct Serializer<std::unordered_map<K, V, Hash, Eq, Alloc>> {
  static constexpr bool enabled = true;
  using MapType = std::unordered_map<K, V, Hash, Eq, Alloc>;

  static void Write(Stream* strm, const MapType& data) {
    detail::WriteCount(strm, data.size());
    for (const auto& kv : data) {
      Serializer<K>::Write(strm, kv.first);
      Serializer<V>::Write(strm, kv.second);
    }
  }

  static bool Read(Stream* strm, MapType* data) {
    size_t size = 0;
    if (!detail::ReadCount(strm, &size)) return false;
    data->clear();
    data->reserve(size);
    for (size_t i = 0; i < size; ++i) {
      K key{};
      V value{};
      if (!Serializer<K>::Read(strm, &key) || !Serializer<V>::Read(strm, &value)) return false;
      (*data)[std::move(key)] = std::move(value);
    }
    return true;
  }
};

template <typename T>
struct Serializer<ffi::Array<T>> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const ffi::Array<T>& data) {
    detail::WriteCount(strm, data.size());
    for (const auto& item : data) Serializer<T>::Write(strm, item);
  }

  static bool Read(Stream* strm, ffi::Array<T>* data) {
    size_t size = 0;
    if (!detail::ReadCount(strm, &size)) return false;
    ffi::Array<T> result;
    result.reserve(static_cast<int64_t>(size));
    for (size_t i = 0; i < size; ++i) {
      T item{};
      if (!Serializer<T>::Read(strm, &item)) return false;
      result.push_back(std::move(item));
    }
    *data = std::move(result);
    return true;
  }
};

template <typename K, typename V>
struct Serializer<ffi::Map<K, V>> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const ffi::Map<K, V>& data) {
    detail::WriteCount(strm, data.size());
    for (const auto& kv : data) {
      Serializer<K>::Write(strm, kv.first);
      Serializer<V>::Write(strm, kv.second);
    }
  }

  static bool Read(Stream* strm, ffi::Map<K, V>* data) {
    size_t size = 0;
    if (!detail::ReadCount(strm, &size)) return false;
    ffi::Map<K, V> result;
    for (size_t i = 0; i < size; ++i) {
      K key{};
      V value{};
      if (!Serializer<K>::Read(strm, &key) || !Serializer<V>::Read(strm, &value)) return false;
      result.Set(std::move(key), std::move(value));
    }
    *data = std::move(result);
    return true;
  }
};

template <>
struct Serializer<DLDataType> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const DLDataType& dtype) {
    Serializer<uint8_t>::Write(strm, dtype.code);
    Serializer<uint8_t>::Write(strm, dtype.bits);
    Serializer<uint16_t>::Write(strm, dtype.lanes);
  }

  static bool Read(Stream* strm, DLDataType* dtype) {
    return Serializer<uint8_t>::Read(strm, &dtype->code) &&
           Serializer<uint8_t>::Read(strm, &dtype->bits) &&
           Serializer<uint16_t>::Read(strm, &dtype->lanes);
  }
};

template <>
struct Serializer<DLDevice> {
  static constexpr bool enabled = true;

  static void Write(Stream* strm, const DLDevice& dev) {
    Serializer<int32_t>::Write(strm, static_cast<int32_t>(dev.device_type));
    Serializer<int32_t>::Write(strm, static_cast<int32_t>(dev.device_id));
  }

  static bool Read(Stream* strm, DLDevice* dev) {
    int32_t device_type = 0;
    int32_t device_id = 0;
    if (!Serializer<int32_t>::Read(strm, &device_type) ||
        !Serializer<int32_t>::Read(strm, &device_id)) {
      return false;
    }
    dev->device_type = static_cast<DLDeviceType>(device_type);
    dev->device_id = device_id;
    return true;
  }
};

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_SERIALIZER_H_
