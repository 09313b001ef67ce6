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
 * \file 3rdparty/compiler-rt/builtin_fp16.h
 * \brief Header-only IEEE-754 binary floating-point format conversions, with the
 *        template signatures of compiler-rt's __extendXfYf2__ / __truncXfYf2__.
 *
 * Template parameters: <SrcT, SrcRepT, SrcSigBits, DstT, DstRepT, DstSigBits>,
 * where *T is the value type (a float type, or an unsigned integer holding the
 * bit pattern, e.g. uint16_t for half), *RepT the unsigned integer of the same
 * width, and *SigBits the number of explicitly stored significand bits
 * (10 for half, 23 for float, 52 for double).
 *
 *  - __extendXfYf2__ widens (e.g. half -> float); it is exact.
 *  - __truncXfYf2__ narrows (e.g. float -> half) rounding to nearest, ties to
 *    even; overflow gives infinity, underflow gives subnormals or signed zero.
 *  NaNs stay NaN (quiet), keeping the sign and the top payload bits.
 */
#ifndef COMPILER_RT_BUILTIN_FP16_H_
#define COMPILER_RT_BUILTIN_FP16_H_

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace hearth_fp_detail {

template <typename RepT, int SigBits>
struct FloatFormat {
  static_assert(std::is_unsigned<RepT>::value, "representation type must be unsigned");
  static constexpr int kBits = static_cast<int>(sizeof(RepT) * 8);
  static constexpr int kSigBits = SigBits;
  static constexpr int kExpBits = kBits - SigBits - 1;
  static constexpr int kMaxExp = (1 << kExpBits) - 1;  // biased exponent of inf/NaN
  static constexpr int kBias = kMaxExp >> 1;
  static constexpr RepT kSigMask = (RepT(1) << SigBits) - 1;
  static constexpr RepT kImplicitBit = RepT(1) << SigBits;
  static constexpr RepT kQuietBit = RepT(1) << (SigBits - 1);
  static constexpr RepT kSignBit = RepT(1) << (kBits - 1);
};

template <typename To, typename From>
inline To BitCast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit cast between types of different size");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

}  // namespace hearth_fp_detail

/*! \brief Widen a binary floating-point value to a format with more exponent and
 *         significand bits (exact). */
template <typename SRC_T, typename SRC_REP_T, int SRC_SIG_BITS, typename DST_T,
          typename DST_REP_T, int DST_SIG_BITS>
static inline DST_T __extendXfYf2__(SRC_T a) {
  using Src = hearth_fp_detail::FloatFormat<SRC_REP_T, SRC_SIG_BITS>;
  using Dst = hearth_fp_detail::FloatFormat<DST_REP_T, DST_SIG_BITS>;
  static_assert(Dst::kSigBits >= Src::kSigBits && Dst::kExpBits >= Src::kExpBits,
                "__extendXfYf2__ only widens");
  constexpr int kShift = Dst::kSigBits - Src::kSigBits;

  const SRC_REP_T bits = hearth_fp_detail::BitCast<SRC_REP_T>(a);
  const bool negative = (bits & Src::kSignBit) != 0;
  const int exp = static_cast<int>((bits >> Src::kSigBits) & SRC_REP_T(Src::kMaxExp));
  SRC_REP_T sig = bits & Src::kSigMask;

  DST_REP_T out;
  if (exp == Src::kMaxExp) {
    // Infinity, or NaN (payload kept, made quiet).
    out = (DST_REP_T(Dst::kMaxExp) << Dst::kSigBits) | (DST_REP_T(sig) << kShift);
    if (sig != 0) out |= Dst::kQuietBit;
  } else if (exp == 0 && sig == 0) {
    out = 0;  // signed zero
  } else {
    int e = exp - Src::kBias;
    if (exp == 0) {
      // Subnormal source: normalise (the wider exponent range always holds it).
      e = 1 - Src::kBias;
      while ((sig & Src::kImplicitBit) == 0) {
        sig = static_cast<SRC_REP_T>(sig << 1);
        --e;
      }
      sig &= Src::kSigMask;
    }
    out = (DST_REP_T(e + Dst::kBias) << Dst::kSigBits) | (DST_REP_T(sig) << kShift);
  }
  if (negative) out |= Dst::kSignBit;
  return hearth_fp_detail::BitCast<DST_T>(out);
}

/*! \brief Narrow a binary floating-point value to a format with fewer exponent and
 *         significand bits, rounding to nearest, ties to even. */
template <typename SRC_T, typename SRC_REP_T, int SRC_SIG_BITS, typename DST_T,
          typename DST_REP_T, int DST_SIG_BITS>
static inline DST_T __truncXfYf2__(SRC_T a) {
  using Src = hearth_fp_detail::FloatFormat<SRC_REP_T, SRC_SIG_BITS>;
  using Dst = hearth_fp_detail::FloatFormat<DST_REP_T, DST_SIG_BITS>;
  static_assert(Src::kSigBits >= Dst::kSigBits && Src::kExpBits >= Dst::kExpBits,
                "__truncXfYf2__ only narrows");
  constexpr int kShift = Src::kSigBits - Dst::kSigBits;

  const SRC_REP_T bits = hearth_fp_detail::BitCast<SRC_REP_T>(a);
  const bool negative = (bits & Src::kSignBit) != 0;
  const int exp = static_cast<int>((bits >> Src::kSigBits) & SRC_REP_T(Src::kMaxExp));
  const SRC_REP_T frac = bits & Src::kSigMask;

  // Round `value >> shift` to nearest, ties to even (shift >= 1).
  auto round_shift = [](SRC_REP_T value, int shift) -> SRC_REP_T {
    const SRC_REP_T kept = value >> shift;
    const SRC_REP_T rest = value & ((SRC_REP_T(1) << shift) - 1);
    const SRC_REP_T half = SRC_REP_T(1) << (shift - 1);
    return (rest > half || (rest == half && (kept & 1))) ? kept + 1 : kept;
  };

  DST_REP_T out;
  if (exp == Src::kMaxExp) {
    // Infinity, or NaN (quiet, top payload bits kept).
    out = DST_REP_T(Dst::kMaxExp) << Dst::kSigBits;
    if (frac != 0) out |= Dst::kQuietBit | (DST_REP_T(frac >> kShift) & Dst::kSigMask);
  } else {
    const SRC_REP_T sig = exp == 0 ? frac : (frac | Src::kImplicitBit);
    const int e = (exp == 0 ? 1 : exp) - Src::kBias;  // value = sig * 2^(e - SrcSigBits)
    const int dst_exp = e + Dst::kBias;
    if (sig == 0) {
      out = 0;
    } else if (dst_exp >= Dst::kMaxExp) {
      out = DST_REP_T(Dst::kMaxExp) << Dst::kSigBits;  // overflow -> infinity
    } else if (dst_exp >= 1) {
      // Normal result; a carry out of the significand correctly bumps the exponent
      // (and turns the largest finite value into infinity).
      SRC_REP_T rounded = round_shift(sig, kShift);  // includes the implicit bit
      out = static_cast<DST_REP_T>((SRC_REP_T(dst_exp - 1) << Dst::kSigBits) + rounded);
    } else {
      // Subnormal (or zero) result: value = m * 2^(1 - DstBias - DstSigBits).
      const int shift = kShift + 1 - dst_exp;
      if (shift > Src::kSigBits + 1) {
        out = 0;  // below half of the smallest subnormal
      } else {
        // May round up to the smallest normal, which is the right encoding.
        out = static_cast<DST_REP_T>(round_shift(sig, shift));
      }
    }
  }
  if (negative) out |= Dst::kSignBit;
  return hearth_fp_detail::BitCast<DST_T>(out);
}

#endif  // COMPILER_RT_BUILTIN_FP16_H_
