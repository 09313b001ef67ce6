/**
 * The int8 code matrix of an open index: one row of `dim` codes per chunk slot, scanned whole per query.
 *
 * Where WebAssembly SIMD is available (every current browser, Node >= 16) the rows live in a WebAssembly
 * memory and the scan is `simd-scan.c` (i16x8 widening + i32x4 dot products): ~7 ms for 100 000 x 384 codes,
 * against 50-150 ms for the plain JavaScript loop, which stays as the fallback. The query is quantised to
 * int16 (13 bits, far finer than the int8 codes), so the integer dot product is exact and cannot overflow:
 * |sum| <= dim * 127 * 8191 < 2^31 for dim <= 2064.
 */

/** simd-scan.c compiled (see the build line there). */
const SCAN_WASM_BASE64 =
  "AGFzbQEAAAABGQVgAAF/YAAAYAV/f39/fwBgAX8AYAF/AX8DBwYBAgADBAAEBQFwAQICBQYBAQGAgAQGDQJ/AUGQKAt/AEGQKAsHhAEJBm1lbW9yeQIABHNjYW4AARlfX2luZGlyZWN0X2Z1bmN0aW9uX3RhYmxlAQALX2luaXRpYWxpemUAABBfX2Vycm5vX2xvY2F0aW9uAAUJc3RhY2tTYXZlAAIMc3RhY2tSZXN0b3JlAAMKc3RhY2tBbGxvYwAEC19faGVhcF9iYXNlAwEJBwEAQQELAQAKswQGAwABC4kEAgJ7BH8CQCADQQBKBEAgAkEATA0BA0AgACACIAhsaiEJQQAhB/0MAAAAAAAAAAAAAAAAAAAAACEFA0AgByAJav0AAAAiBv2HASABIAdBAXRqIgr9AAAA/boBIAX9rgEgBv2IASAK/QAAEP26Af2uASEFIAdBEGoiByACSA0ACyAEIAhBAnRqIAX9GwAgBf0bAWogBf0bAmogBf0bA2o2AgAgCEEBaiIIIANHDQALCw8LAkAgA0ECdCIBRQ0AIARBADoAACABIARqIgBBAWtBADoAACABQQNJDQAgBEEAOgACIARBADoAASAAQQNrQQA6AAAgAEECa0EAOgAAIAFBB0kNACAEQQA6AAMgAEEEa0EAOgAAIAFBCUkNACAEQQAgBGtBA3EiAmoiAEEANgIAIAAgASACa0F8cSICaiIBQQRrQQA2AgAgAkEJSQ0AIABBADYCCCAAQQA2AgQgAUEIa0EANgIAIAFBDGtBADYCACACQRlJDQAgAEEANgIYIABBADYCFCAAQQA2AhAgAEEANgIMIAFBEGtBADYCACABQRRrQQA2AgAgAUEYa0EANgIAIAFBHGtBADYCACACIABBBHFBGHIiAmsiAUEgSQ0AIAAgAmohAANAIABCADcDGCAAQgA3AxAgAEIANwMIIABCADcDACAAQSBqIQAgAUEgayIBQR9LDQALCwsEACMACwYAIAAkAAsQACMAIABrQXBxIgAkACAACwUAQYAICw==";

const QUERY_SCALE = 8191;
const MAX_SIMD_DIM = 2064;
const PAGE = 65536;

interface ScanExports {
  memory: WebAssembly.Memory;
  scan(codes: number, query: number, dim: number, n: number, out: number): void;
  __heap_base: WebAssembly.Global;
  _initialize?: () => void;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let simdModule: WebAssembly.Module | null | undefined;

/** The compiled scan module, or null where WebAssembly SIMD is unavailable. */
function scanModule(): WebAssembly.Module | null {
  if (simdModule !== undefined) return simdModule;
  try {
    const bytes = decodeBase64(SCAN_WASM_BASE64);
    // A small module: synchronous compilation is allowed even on a browser main thread.
    simdModule = typeof WebAssembly !== "undefined" && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    simdModule = null;
  }
  return simdModule;
}

export class CodeMatrix {
  private capacity = 0;
  private readonly wasm: ScanExports | null = null;
  private readonly base: number = 0;
  /** Row-major codes, `capacity * dim` (a view into the wasm memory when SIMD is used). */
  codes: Int8Array = new Int8Array(0);

  constructor(
    readonly dim: number,
    opts: { simd?: boolean } = {},
  ) {
    const module = opts.simd === false || dim % 16 !== 0 || dim > MAX_SIMD_DIM ? null : scanModule();
    if (module !== null) {
      try {
        const exports = new WebAssembly.Instance(module, {}).exports as unknown as ScanExports;
        exports._initialize?.();
        this.wasm = exports;
        this.base = ((exports.__heap_base.value as number) + 15) & ~15;
      } catch {
        // e.g. a Content-Security-Policy without 'wasm-unsafe-eval': the JavaScript scan below still works.
      }
    }
  }

  /** Whether the WebAssembly SIMD scan is in use. */
  get simd(): boolean {
    return this.wasm !== null;
  }

  /** Byte offsets for `cap` rows: codes from `base`, then the int16 query, then the int32 outputs. */
  private layout(cap: number): { query: number; out: number; end: number } {
    const query = this.base + cap * this.dim;
    const out = (query + this.dim * 2 + 15) & ~15;
    return { query, out, end: out + cap * 4 };
  }

  /** Make room for at least `rows` rows (existing rows keep their place). */
  reserve(rows: number): void {
    if (rows <= this.capacity) return;
    const cap = Math.max(rows, this.capacity * 2, 64);
    if (this.wasm !== null) {
      const mem = this.wasm.memory;
      const need = this.layout(cap).end;
      if (need > mem.buffer.byteLength) mem.grow(Math.ceil((need - mem.buffer.byteLength) / PAGE));
      this.codes = new Int8Array(mem.buffer, this.base, cap * this.dim);
    } else {
      const codes = new Int8Array(cap * this.dim);
      codes.set(this.codes);
      this.codes = codes;
    }
    this.capacity = cap;
  }

  setRow(row: number, code: Int8Array, offset = 0): void {
    this.codes.set(code.subarray(offset, offset + this.dim), row * this.dim);
  }

  clearRow(row: number): void {
    this.codes.fill(0, row * this.dim, (row + 1) * this.dim);
  }

  /** Dot products of `query` with rows [0, rows), each times `scales[row]`, in a new Float32Array. */
  scan(query: Float32Array, rows: number, scales: Float32Array): Float32Array {
    const dim = this.dim;
    if (query.length !== dim) throw new RangeError(`query has ${query.length} dimensions, the index ${dim}`);
    if (rows > this.capacity) throw new RangeError(`scan of ${rows} rows, capacity ${this.capacity}`);
    const scores = new Float32Array(rows);
    if (this.wasm !== null) {
      let max = 0;
      for (let i = 0; i < dim; i++) max = Math.max(max, Math.abs(query[i] as number));
      const qs = max === 0 ? 1 : QUERY_SCALE / max;
      const { query: qAt, out: outAt } = this.layout(this.capacity);
      const q16 = new Int16Array(this.wasm.memory.buffer, qAt, dim);
      for (let i = 0; i < dim; i++) q16[i] = Math.round((query[i] as number) * qs);
      this.wasm.scan(this.base, qAt, dim, rows, outAt);
      const out = new Int32Array(this.wasm.memory.buffer, outAt, rows);
      const inv = 1 / qs;
      for (let s = 0; s < rows; s++) scores[s] = (out[s] as number) * (scales[s] as number) * inv;
      return scores;
    }
    const codes = this.codes;
    const dim4 = dim & ~3;
    for (let s = 0, base = 0; s < rows; s++, base += dim) {
      // 4 accumulators: independent chains let the CPU overlap the multiply-adds.
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let i = 0;
      for (; i < dim4; i += 4) {
        a0 += (query[i] as number) * (codes[base + i] as number);
        a1 += (query[i + 1] as number) * (codes[base + i + 1] as number);
        a2 += (query[i + 2] as number) * (codes[base + i + 2] as number);
        a3 += (query[i + 3] as number) * (codes[base + i + 3] as number);
      }
      for (; i < dim; i++) a0 += (query[i] as number) * (codes[base + i] as number);
      scores[s] = (a0 + a1 + a2 + a3) * (scales[s] as number);
    }
    return scores;
  }
}
