/** Tensor dtype helpers: element sizes, float16 <-> float32, and raw little-endian byte encoding. */

export type TensorDType = "float32" | "float16" | "int32" | "uint32" | "int8" | "uint8";

const SIZES: Record<TensorDType, number> = {
  float32: 4,
  float16: 2,
  int32: 4,
  uint32: 4,
  int8: 1,
  uint8: 1,
};

export function isTensorDType(x: unknown): x is TensorDType {
  return typeof x === "string" && Object.hasOwn(SIZES, x);
}

export function dtypeBytes(dtype: TensorDType): number {
  return SIZES[dtype];
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half (bits) -> number. Handles subnormals, inf, NaN. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number -> IEEE half bits, round to nearest even (matches numpy's astype(float16)). */
export function numberToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000; // implicit leading 1
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1) === 1)) r += 1;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) {
    r += 1;
    if (r === 0x400) {
      r = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** Encode numbers as the raw little-endian bytes of `dtype`. */
export function encodeTensorData(dtype: TensorDType, data: ArrayLike<number>): Uint8Array {
  switch (dtype) {
    case "float32":
      return new Uint8Array(Float32Array.from(data).buffer);
    case "float16": {
      const out = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = numberToF16Bits(data[i] ?? 0);
      return new Uint8Array(out.buffer);
    }
    case "int32":
      return new Uint8Array(Int32Array.from(data).buffer);
    case "uint32":
      return new Uint8Array(Uint32Array.from(data).buffer);
    case "int8":
      return new Uint8Array(Int8Array.from(data).buffer);
    case "uint8":
      return Uint8Array.from(data);
  }
}

/** Decode raw little-endian bytes of `dtype` into float64 numbers (float16 widened exactly). */
export function decodeTensorData(dtype: TensorDType, bytes: Uint8Array): Float64Array {
  const n = bytes.byteLength / dtypeBytes(dtype);
  if (!Number.isInteger(n)) throw new Error(`${bytes.byteLength} bytes is not a whole number of ${dtype}`);
  // Copy so the view is aligned regardless of the source offset.
  const buf = bytes.slice().buffer;
  const out = new Float64Array(n);
  switch (dtype) {
    case "float32":
      out.set(new Float32Array(buf));
      break;
    case "float16": {
      const h = new Uint16Array(buf);
      for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(h[i] ?? 0);
      break;
    }
    case "int32":
      out.set(new Int32Array(buf));
      break;
    case "uint32":
      out.set(new Uint32Array(buf));
      break;
    case "int8":
      out.set(new Int8Array(buf));
      break;
    case "uint8":
      out.set(new Uint8Array(buf));
      break;
  }
  return out;
}
