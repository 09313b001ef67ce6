/**
 * End-to-end smoke runner: one compiled model "case" (wasm + tensor cache + inputs + expected output,
 * written by the Python side) run on WebGPU and compared with the expected output.
 *
 * The same code runs in Node (Dawn) and in a browser module Worker.
 */
import { requestGPU, type AdapterDescription, type GPUHandle } from "../runtime/gpu.js";
import { asDirectoryUrl, loadTensorCache, MemoryArtifactCache, type FetchLike, type Logger, type TVMLibrary } from "../runtime/tvm.js";
import { loadTVMLibrary } from "../runtime/instantiate.js";
import type { TvmjsModule, TvmTensor, TvmArray } from "../runtime/tvmjs-types.js";
import { decodeTensorData, encodeTensorData, isTensorDType, numElements, type TensorDType } from "../runtime/dtype.js";

export interface CaseTensor {
  name?: string;
  shape: number[];
  dtype: TensorDType;
  data: number[];
}

/** case.json, as written by the Python side. */
export interface SmokeCase {
  name: string;
  wasm: string;
  function: string;
  requires_f16: boolean;
  inputs: (CaseTensor & { name: string })[];
  params: string[];
  expected: CaseTensor;
  tolerance: number;
}

export interface CaseTimings {
  /** wasm fetch + instantiate + shader compile + VM + tensor cache upload. */
  loadMs: number;
  /** First call including input upload and output readback. */
  firstRunMs: number;
  /** Median of `runs` further calls, each including output readback. */
  runMs: number;
  /** Every measured run (ms). */
  runsMs: number[];
  detail: { wasmFetchMs: number; instantiateMs: number; pipelinesMs: number; tensorCacheMs: number };
}

export interface CaseRanResult {
  name: string;
  ok: boolean;
  maxAbsErr: number;
  tolerance: number;
  /** Why ok is false (shape/dtype mismatch, non-finite values, error above tolerance). */
  problems: string[];
  /** First 8 output values (float16 widened to float). */
  output: number[];
  expectedHead: number[];
  outputShape: number[];
  outputDtype: string;
  timings: CaseTimings;
  adapter: AdapterDescription;
  deviceFeatures: string[];
}

export interface CaseSkippedResult {
  name: string;
  skipped: string;
  adapter: AdapterDescription;
}

export type CaseResult = CaseRanResult | CaseSkippedResult;

export interface RunCaseDeps {
  /** WebGPU entry point; default `navigator.gpu`. */
  gpu?: GPU | undefined;
  /** Fetch for case.json, the wasm and the tensor cache; default global fetch. */
  fetch?: FetchLike | undefined;
  tvmjs?: TvmjsModule | undefined;
  logger?: Logger | undefined;
  /** Timed runs after the first (default 5). */
  runs?: number | undefined;
}

function bad(msg: string): never {
  throw new Error(`case.json: ${msg}`);
}

function parseTensor(x: unknown, where: string): CaseTensor {
  if (typeof x !== "object" || x === null) bad(`${where} is not an object`);
  const t = x as Record<string, unknown>;
  const { shape, dtype, data } = t;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    bad(`${where}.shape must be an array of non-negative integers`);
  }
  if (!isTensorDType(dtype)) bad(`${where}.dtype ${JSON.stringify(dtype)} is not supported`);
  if (!Array.isArray(data) || !data.every((v) => typeof v === "number")) {
    bad(`${where}.data must be a flat array of numbers`);
  }
  const n = numElements(shape as number[]);
  if (data.length !== n) bad(`${where}.data has ${data.length} values, shape ${JSON.stringify(shape)} needs ${n}`);
  const out: CaseTensor = { shape: shape as number[], dtype, data: data as number[] };
  if (typeof t["name"] === "string") out.name = t["name"];
  return out;
}

/** Validate a case.json document. */
export function parseSmokeCase(json: unknown): SmokeCase {
  if (typeof json !== "object" || json === null) bad("not an object");
  const c = json as Record<string, unknown>;
  for (const key of ["name", "wasm", "function"] as const) {
    if (typeof c[key] !== "string" || c[key] === "") bad(`"${key}" must be a non-empty string`);
  }
  if (!Array.isArray(c["inputs"])) bad(`"inputs" must be an array`);
  if (!Array.isArray(c["params"]) || !c["params"].every((p) => typeof p === "string")) {
    bad(`"params" must be an array of strings`);
  }
  const tolerance = c["tolerance"];
  if (typeof tolerance !== "number" || !(tolerance >= 0)) bad(`"tolerance" must be a number >= 0`);
  const inputs = c["inputs"].map((x: unknown, i) => {
    const t = parseTensor(x, `inputs[${i}]`);
    return { ...t, name: t.name ?? `input${i}` };
  });
  return {
    name: c["name"] as string,
    wasm: c["wasm"] as string,
    function: c["function"] as string,
    requires_f16: c["requires_f16"] === true,
    inputs,
    params: c["params"] as string[],
    expected: parseTensor(c["expected"], "expected"),
    tolerance,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function fetchOk(fetchFn: FetchLike, url: string): Promise<Response> {
  const res = await fetchFn(url);
  if (!res.ok) throw new Error(`GET ${url} failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
  return res;
}

function isTensorLike(x: unknown): x is TvmTensor {
  return typeof x === "object" && x !== null && Array.isArray((x as { shape?: unknown }).shape) && typeof (x as { dtype?: unknown }).dtype === "string";
}

/**
 * Run `<caseUrl>/case.json` on WebGPU: load its wasm and tensor cache, call
 * `vm.getFunction(case.function)(...inputs, ...params)`, read the output back and compare.
 * The GPU device is created here and destroyed before returning.
 */
export async function runCase(caseUrl: string, deps: RunCaseDeps = {}): Promise<CaseResult> {
  const base = asDirectoryUrl(caseUrl);
  const fetchFn: FetchLike = deps.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const runs = deps.runs ?? 5;
  const spec = parseSmokeCase(await (await fetchOk(fetchFn, new URL("case.json", base).href)).json());

  const gpu: GPUHandle = await requestGPU({ gpu: deps.gpu, label: `hearth-smoke:${spec.name}` });
  const adapter = gpu.info;
  if (spec.requires_f16 && !adapter.shaderF16) {
    gpu.device.destroy();
    return { name: spec.name, skipped: "adapter has no shader-f16", adapter };
  }

  let lib: TVMLibrary | undefined;
  try {
    const tLoad0 = performance.now();
    const wasm = await (await fetchOk(fetchFn, new URL(spec.wasm, base).href)).arrayBuffer();
    const tWasm = performance.now();
    lib = await loadTVMLibrary({ wasm, device: gpu.device, logger: deps.logger, tvmjs: deps.tvmjs });
    const cache = await loadTensorCache(lib.tvm, base, { artifactCache: new MemoryArtifactCache(fetchFn) });
    const missing = spec.params.filter((p) => !cache.names.includes(p));
    if (missing.length > 0) throw new Error(`params not in tensor-cache.json: ${missing.join(", ")}`);
    const loadMs = performance.now() - tLoad0;

    const { tvm, vm } = lib;
    const dev = tvm.webgpu();
    const expected = spec.expected;

    tvm.beginScope(); // everything tvmjs returns below is owned by this scope
    try {
      const fn = vm.getFunction(spec.function);
      const inputs = spec.inputs.map((t) => {
        const bytes = encodeTensorData(t.dtype, t.data);
        if (bytes.byteLength % 4 !== 0) {
          throw new Error(`input ${t.name}: ${bytes.byteLength} bytes; WebGPU uploads need a multiple of 4`);
        }
        return tvm.empty(t.shape, t.dtype, dev).copyFromRawBytes(bytes);
      });
      const paramArray = tvm.getParamsFromCacheByName(spec.params) as TvmArray;
      const params: unknown[] = [];
      for (let i = 0; i < paramArray.size(); i++) params.push(paramArray.get(i));

      /** One forward + readback; returns the output tensor's decoded values. */
      const runOnce = async (): Promise<{ values: Float64Array; shape: number[]; dtype: string }> => {
        tvm.beginScope();
        try {
          let out = fn(...inputs, ...params);
          if (!isTensorLike(out)) {
            const arr = out as Partial<TvmArray> | null;
            if (typeof arr?.size === "function" && typeof arr.get === "function" && arr.size() === 1) {
              out = arr.get(0);
            }
          }
          if (!isTensorLike(out)) {
            throw new Error(`${spec.function} did not return a single tensor (got ${String(out)})`);
          }
          const dtype = out.dtype;
          if (!isTensorDType(dtype)) throw new Error(`output dtype ${dtype} is not supported`);
          const host = tvm.empty(out.shape, dtype, tvm.cpu()).copyFrom(out);
          await dev.sync();
          return { values: decodeTensorData(dtype, host.toRawBytes()), shape: [...out.shape], dtype };
        } finally {
          tvm.endScope();
        }
      };

      let t = performance.now();
      const first = await runOnce();
      const firstRunMs = performance.now() - t;
      const runsMs: number[] = [];
      let last = first;
      for (let i = 0; i < runs; i++) {
        t = performance.now();
        last = await runOnce();
        runsMs.push(performance.now() - t);
      }

      const problems: string[] = [];
      if (JSON.stringify(last.shape) !== JSON.stringify(expected.shape)) {
        problems.push(`shape ${JSON.stringify(last.shape)} != expected ${JSON.stringify(expected.shape)}`);
      }
      if (last.dtype !== expected.dtype) problems.push(`dtype ${last.dtype} != expected ${expected.dtype}`);
      let maxAbsErr = 0;
      let nonFinite = 0;
      const n = Math.min(last.values.length, expected.data.length);
      for (let i = 0; i < n; i++) {
        const v = last.values[i] as number;
        if (!Number.isFinite(v)) {
          nonFinite++;
          continue;
        }
        maxAbsErr = Math.max(maxAbsErr, Math.abs(v - (expected.data[i] as number)));
      }
      if (last.values.length !== expected.data.length) {
        problems.push(`${last.values.length} output values != expected ${expected.data.length}`);
      }
      if (nonFinite > 0) problems.push(`${nonFinite} non-finite output values`);
      // Runs must agree with each other too (catches races / uninitialised memory).
      for (let i = 0; i < first.values.length; i++) {
        if (first.values[i] !== last.values[i] && !(Number.isNaN(first.values[i]) && Number.isNaN(last.values[i]))) {
          problems.push(`first and last run differ at index ${i}`);
          break;
        }
      }
      if (!(maxAbsErr <= spec.tolerance)) problems.push(`maxAbsErr ${maxAbsErr} > tolerance ${spec.tolerance}`);

      return {
        name: spec.name,
        ok: problems.length === 0,
        maxAbsErr,
        tolerance: spec.tolerance,
        problems,
        output: Array.from(last.values.subarray(0, 8)),
        expectedHead: expected.data.slice(0, 8),
        outputShape: last.shape,
        outputDtype: last.dtype,
        timings: {
          loadMs,
          firstRunMs,
          runMs: median(runsMs),
          runsMs,
          detail: {
            wasmFetchMs: tWasm - tLoad0,
            instantiateMs: lib.timings.instantiateMs,
            pipelinesMs: lib.timings.pipelinesMs,
            tensorCacheMs: cache.loadMs,
          },
        },
        adapter,
        deviceFeatures: gpu.deviceFeatures,
      };
    } finally {
      tvm.endScope();
    }
  } finally {
    if (lib !== undefined)
      lib.dispose(); // also destroys the device
    else gpu.device.destroy();
  }
}
