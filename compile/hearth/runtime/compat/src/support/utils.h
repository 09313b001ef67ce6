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
 * \file src/support/utils.h
 * \brief Small string, hashing and environment helpers.
 */
#ifndef TVM_SUPPORT_UTILS_H_
#define TVM_SUPPORT_UTILS_H_

#include <tvm/ffi/error.h>
#include <tvm/ffi/string.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tvm {
namespace support {

namespace detail {
// Views over the string types the runtime passes around (std::string, ffi::String,
// C strings); one overload per type so that no call is ambiguous.
inline std::string_view AsStringView(std::string_view s) { return s; }
inline std::string_view AsStringView(const std::string& s) { return s; }
inline std::string_view AsStringView(const char* s) { return std::string_view(s); }
inline std::string_view AsStringView(const ffi::String& s) {
  return std::string_view(s.data(), s.size());
}
}  // namespace detail

/*! \return Whether \p str is a non-empty run of decimal digits. */
template <typename S>
inline bool IsNumber(const S& str) {
  std::string_view s = detail::AsStringView(str);
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/*!
 * \brief Split \p str at every \p delim. Empty fields between delimiters are kept;
 *        a trailing delimiter does not add an empty last field (std::getline rules).
 */
template <typename S>
inline std::vector<std::string> Split(const S& str, char delim) {
  std::string_view s = detail::AsStringView(str);
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin < s.size()) {
    size_t end = s.find(delim, begin);
    if (end == std::string_view::npos) end = s.size();
    parts.emplace_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

/*! \return Whether \p str begins with \p prefix. */
template <typename S, typename P>
inline bool StartsWith(const S& str, const P& prefix) {
  std::string_view s = detail::AsStringView(str);
  std::string_view p = detail::AsStringView(prefix);
  return s.size() >= p.size() && s.compare(0, p.size(), p) == 0;
}

/*! \return Whether \p str ends with \p suffix. */
template <typename S, typename P>
inline bool EndsWith(const S& str, const P& suffix) {
  std::string_view s = detail::AsStringView(str);
  std::string_view p = detail::AsStringView(suffix);
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

/*!
 * \brief Combine a hash \p key with \p value (boost-style mixing).
 *        Deterministic across platforms: it never uses std::hash.
 * \return The combined hash.
 */
template <typename T, std::enable_if_t<std::is_convertible_v<T, uint64_t>, bool> = true>
inline uint64_t HashCombine(uint64_t key, const T& value) {
  return key ^ (static_cast<uint64_t>(value) + 0x9e3779b9ULL + (key << 6) + (key >> 2));
}

/*!
 * \brief Read a boolean environment variable.
 * \return false when unset or empty; "1", "true", "yes", "on" (any case) are true,
 *         "0", "false", "no", "off" are false; anything else is an error.
 */
inline bool BoolEnvironmentVar(const char* varname) {
  const char* raw = std::getenv(varname);
  if (raw == nullptr) return false;
  std::string value(raw);
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (value.empty() || value == "0" || value == "false" || value == "no" || value == "off") {
    return false;
  }
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  TVM_FFI_THROW(ValueError) << "Environment variable " << varname << "=" << raw
                            << " is not a boolean (expected 0/1/true/false/yes/no/on/off)";
  return false;
}

}  // namespace support
}  // namespace tvm

#endif  // TVM_SUPPORT_UTILS_H_
