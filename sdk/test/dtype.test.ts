import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeTensorData, encodeTensorData, f16BitsToNumber, numberToF16Bits } from "../src/runtime/dtype.js";

test("float16 decode -> encode is the identity on every non-NaN bit pattern", () => {
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToNumber(h);
    if (Number.isNaN(v)) {
      assert.equal(Number.isNaN(f16BitsToNumber(numberToF16Bits(v))), true);
      continue;
    }
    assert.equal(numberToF16Bits(v), h, `bits 0x${h.toString(16)} -> ${v}`);
  }
});

test("float16 known values and round-to-nearest-even", () => {
  assert.equal(f16BitsToNumber(0x3c00), 1);
  assert.equal(f16BitsToNumber(0xc000), -2);
  assert.equal(f16BitsToNumber(0x7bff), 65504);
  assert.equal(f16BitsToNumber(0x0001), 2 ** -24);
  assert.equal(f16BitsToNumber(0x7c00), Infinity);
  assert.equal(numberToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even (down)
  assert.equal(numberToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(numberToF16Bits(65519), 0x7bff);
  assert.equal(numberToF16Bits(65520), 0x7c00); // rounds to inf
  assert.equal(numberToF16Bits(2 ** -25), 0x0000); // tie between 0 and min subnormal -> 0
  assert.equal(numberToF16Bits(3 * 2 ** -26), 0x0001);
  assert.equal(numberToF16Bits(-0), 0x8000);
  assert.equal(numberToF16Bits(0.1), 0x2e66); // numpy: np.float16(0.1).view(np.uint16) == 0x2e66
  assert.equal(numberToF16Bits(2 ** -14 - 2 ** -25), 0x0400); // largest subnormal + half ulp rounds up to min normal
});

test("encode/decode round trip for every dtype", () => {
  const cases = [
    ["float32", [1.5, -2.25, 3e-8]],
    ["float16", [1.5, -2.25, 2 ** -14 - 2 ** -24]], // the largest subnormal
    ["int32", [-5, 0, 2147483647]],
    ["uint32", [0, 1, 4294967295]],
    ["int8", [-128, 0, 127]],
    ["uint8", [0, 128, 255]],
  ] as const;
  for (const [dtype, values] of cases) {
    const bytes = encodeTensorData(dtype, values);
    const back = Array.from(decodeTensorData(dtype, bytes));
    assert.deepEqual(back, dtype === "float32" ? values.map(Math.fround) : [...values], dtype);
  }
  assert.equal(encodeTensorData("float16", [1, 2]).byteLength, 4);
  assert.throws(() => decodeTensorData("float32", new Uint8Array(6)), /not a whole number/);
});
