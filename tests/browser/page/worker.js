// Module Worker: the engine side. Imports the built SDK exactly as an app's worker would.
import {
  describeAdapter,
  loadTvmjs,
  requestGPU,
  runCase,
  WebGPUUnavailableError,
} from "/sdk/dist/index.js";

const log = (text) => self.postMessage({ type: "log", text });

function serializeError(err) {
  if (err instanceof Error) {
    return {
      name: err.name,
      message: err.message,
      stack: err.stack ?? null,
      reason: err instanceof WebGPUUnavailableError ? err.reason : null,
      missing: Array.isArray(err.missing) ? err.missing : null,
    };
  }
  return { name: "Error", message: String(err), stack: null, reason: null, missing: null };
}

const tasks = {
  /** Adapter description + device creation time, from inside the worker. */
  async probe() {
    const t0 = performance.now();
    const h = await requestGPU();
    const requestGPUMs = performance.now() - t0;
    h.device.destroy();
    return { ...h.info, deviceFeatures: h.deviceFeatures, requestGPUMs, rawAdapterCheck: describeAdapter(h.adapter).description };
  },

  /** WGSL compute round trip: c = a + b over n floats. */
  async compute({ n = 1000 }) {
    const h = await requestGPU();
    const device = h.device;
    try {
      const a = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 100);
      const b = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
      const code = `
        @group(0) @binding(0) var<storage, read> a: array<f32>;
        @group(0) @binding(1) var<storage, read> b: array<f32>;
        @group(0) @binding(2) var<storage, read_write> c: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
          if (id.x < arrayLength(&c)) { c[id.x] = a[id.x] + b[id.x]; }
        }`;
      const once = async () => {
        device.pushErrorScope("validation");
        const module = device.createShaderModule({ code });
        const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
        const mk = (data) => {
          const buf = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
          new Float32Array(buf.getMappedRange()).set(data);
          buf.unmap();
          return buf;
        };
        const ba = mk(a);
        const bb = mk(b);
        const bc = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
        const rd = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const bg = device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [ba, bb, bc].map((buffer, binding) => ({ binding, resource: { buffer } })),
        });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bg);
        pass.dispatchWorkgroups(Math.ceil(n / 64));
        pass.end();
        enc.copyBufferToBuffer(bc, 0, rd, 0, n * 4);
        device.queue.submit([enc.finish()]);
        const err = await device.popErrorScope();
        if (err) throw new Error(`WebGPU validation error: ${err.message}`);
        await rd.mapAsync(GPUMapMode.READ);
        const out = new Float32Array(rd.getMappedRange().slice(0));
        rd.unmap();
        for (const x of [ba, bb, bc, rd]) x.destroy();
        return out;
      };
      let t = performance.now();
      const out = await once();
      const firstMs = performance.now() - t;
      t = performance.now();
      await once();
      const secondMs = performance.now() - t;
      let mismatches = 0;
      for (let i = 0; i < n; i++) if (out[i] !== Math.fround(a[i] + b[i])) mismatches++;
      return { n, mismatches, firstMs, secondMs, head: Array.from(out.subarray(0, 4)) };
    } finally {
      device.destroy();
    }
  },

  /** tvmjs loads in a module Worker (through dist/vendor/tvmjs.js). */
  async tvmjs() {
    const t0 = performance.now();
    const tvmjs = await loadTvmjs();
    const wasi = tvmjs.createPolyfillWASI();
    return {
      instantiate: typeof tvmjs.instantiate,
      wasiStart: typeof wasi.start,
      wasiImports: Object.keys(wasi.imports).sort(),
      loadMs: performance.now() - t0,
    };
  },

  async case({ caseUrl, runs = 5 }) {
    return runCase(new URL(caseUrl, self.location.href).href, { runs, logger: (m) => log(`tvmjs: ${m}`) });
  },
};

self.onmessage = async (event) => {
  const { id, task, ...args } = event.data;
  try {
    const fn = tasks[task];
    if (fn === undefined) throw new Error(`unknown task ${task}`);
    const result = await fn(args);
    self.postMessage({ type: "result", id, result });
  } catch (err) {
    self.postMessage({ type: "error", id, error: serializeError(err) });
  }
};
self.postMessage({ type: "ready" });
