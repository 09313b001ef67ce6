/**
 * Greedy token selection on the GPU: the argmax of a float32 logits buffer, so that a greedy decode step
 * reads back 8 bytes instead of the whole vocabulary (600 KB for Qwen2.5's 151936 logits) and skips the
 * host-side scan (~0.6 ms per token on the H200 host, docs/benchmarks.md).
 *
 * Same answer as sample/argmax.ts's argmax: the first index of the largest value, +Infinity wins like any value,
 * all -Infinity gives index 0, and a NaN anywhere is reported (NonFiniteLogitsError) instead of a token.
 * Two dispatches in one pass: up to GROUPS workgroups of 256 invocations each reduce a strided slice to one
 * (value, index, NaN) partial, then one workgroup reduces the partials. One workgroup alone would leave a
 * single GPU core scanning the vocabulary with ~600 dependent loads per invocation: memory latency, on the
 * critical path of every pipelined decode step.
 */
import { NonFiniteLogitsError } from "../sample/argmax.js";

const WORKGROUP = 256;
/** Most partials (workgroups of the first dispatch); the second dispatch reduces them with one workgroup. */
const GROUPS = 256;
const INVALID = 0xffffffff;

const COMMON = /* wgsl */ `
struct Params { offset: u32, n: u32, groups: u32 }
@group(0) @binding(2) var<uniform> params: Params;
var<workgroup> bestValue: array<f32, ${WORKGROUP}>;
var<workgroup> bestIndex: array<u32, ${WORKGROUP}>;
var<workgroup> sawNaN: array<u32, ${WORKGROUP}>;

// NaN by its bits: WGSL lets implementations assume floats are not NaN, so v != v is not reliable.
fn isNaN(v: f32) -> bool {
  let b = bitcast<u32>(v);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

// (v, i) beats (w, j): a larger value, or the same value at a smaller index; an empty slot never wins.
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
  if (i == ${INVALID}u) { return false; }
  if (j == ${INVALID}u) { return true; }
  return v > w || (v == w && i < j);
}

// The workgroup's best (value, index) and NaN flag into slot 0, from each invocation's.
fn reduce(t: u32, bv: f32, bi: u32, nan: u32) {
  bestValue[t] = bv;
  bestIndex[t] = bi;
  sawNaN[t] = nan;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) {
      if (beats(bestValue[t + s], bestIndex[t + s], bestValue[t], bestIndex[t])) {
        bestValue[t] = bestValue[t + s];
        bestIndex[t] = bestIndex[t + s];
      }
      sawNaN[t] = sawNaN[t] | sawNaN[t + s];
    }
    workgroupBarrier();
  }
}
`;

// Partial k: (value bits, index, NaN seen) of the elements k * 256 + t + j * groups * 256.
const PARTIALS = /* wgsl */ `${COMMON}
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<vec3<u32>>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) g: vec3<u32>) {
  var bv = 0.0;
  var bi = ${INVALID}u;
  var nan = 0u;
  for (var i = g.x * ${WORKGROUP}u + t; i < params.n; i += params.groups * ${WORKGROUP}u) {
    let v = logits[params.offset + i];
    if (isNaN(v)) { nan = 1u; } else if (beats(v, i, bv, bi)) { bv = v; bi = i; }
  }
  reduce(t, bv, bi, nan);
  if (t == 0u) {
    partials[g.x] = vec3<u32>(bitcast<u32>(bestValue[0]), bestIndex[0], sawNaN[0]);
  }
}
`;

const FINAL = /* wgsl */ `${COMMON}
@group(0) @binding(0) var<storage, read> partials: array<vec3<u32>>;
@group(0) @binding(1) var<storage, read_write> result: array<u32, 2>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) t: u32) {
  var bv = 0.0;
  var bi = ${INVALID}u;
  var nan = 0u;
  if (t < params.groups) {
    let p = partials[t];
    bv = bitcast<f32>(p.x);
    bi = p.y;
    nan = p.z;
  }
  reduce(t, bv, bi, nan);
  if (t == 0u) {
    result[0] = bestIndex[0];
    result[1] = sawNaN[0];
  }
}
`;

/** Where launch() also writes the argmax (as one 32-bit word): the next decode step's input token. */
export interface ArgmaxFeed {
  buffer: GPUBuffer;
  byteOffset: number;
}

/**
 * Readback buffers in the ring: one per launch whose token has not been read yet. A pipelined decode has
 * two in flight (step k being read while step k + 1 runs); a third is spare.
 */
const RING = 3;

export class GpuArgmax {
  private readonly partialsPipeline: GPUComputePipeline;
  private readonly finalPipeline: GPUComputePipeline;
  private readonly partials: GPUBuffer;
  private readonly finalBindGroup: GPUBindGroup;
  private readonly result: GPUBuffer;
  private readonly readbacks: GPUBuffer[] = [];
  /** readbacks[i] is mapped or waiting to be (its token not read yet). */
  private readonly busy: boolean[] = [];
  private next = 0;
  private readonly params: GPUBuffer;
  private readonly bindGroups = new WeakMap<GPUBuffer, GPUBindGroup>();
  private lastParams = "";

  constructor(private readonly device: GPUDevice) {
    const pipeline = (code: string, label: string): GPUComputePipeline =>
      device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code, label }), entryPoint: "main" }, label });
    this.partialsPipeline = pipeline(PARTIALS, "hearth-argmax-partials");
    this.finalPipeline = pipeline(FINAL, "hearth-argmax-final");
    // vec3<u32> elements are 16 bytes apart in a storage array
    this.partials = device.createBuffer({ size: 16 * GROUPS, usage: GPUBufferUsage.STORAGE, label: "hearth-argmax-partials" });
    this.result = device.createBuffer({ size: 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: "hearth-argmax-result" });
    for (let i = 0; i < RING; i++) {
      this.readbacks.push(device.createBuffer({ size: 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `hearth-argmax-readback-${i}` }));
      this.busy.push(false);
    }
    this.params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: "hearth-argmax-params" });
    this.finalBindGroup = device.createBindGroup({
      layout: this.finalPipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.partials } },
        { binding: 1, resource: { buffer: this.result } },
        { binding: 2, resource: { buffer: this.params } },
      ],
    });
  }

  /**
   * Index of the largest of `n` float32 values starting at element `offset` of `logits`. Queued after
   * everything already submitted to the device's queue, so the caller submits the producing work first.
   */
  argmax(logits: GPUBuffer, offset: number, n: number): Promise<number> {
    return this.launch(logits, offset, n);
  }

  /**
   * Queue the argmax (submitted before this returns) and, with `feed`, a copy of the index into
   * `feed.buffer` at `feed.byteOffset` on the GPU; resolves when the index is read back. Up to RING
   * launches may be waiting to be read at once.
   */
  launch(logits: GPUBuffer, offset: number, n: number, feed?: ArgmaxFeed): Promise<number> {
    if (!Number.isSafeInteger(n) || n <= 0) return Promise.reject(new RangeError(`argmax of ${n} logits`));
    if ((offset + n) * 4 > logits.size) return Promise.reject(new RangeError(`logits [${offset}, ${offset + n}) exceed a ${logits.size}-byte buffer`));
    if (feed !== undefined && (feed.byteOffset % 4 !== 0 || feed.byteOffset + 4 > feed.buffer.size)) {
      return Promise.reject(new RangeError(`argmax feed at byte ${feed.byteOffset} of a ${feed.buffer.size}-byte buffer`));
    }
    const slot = this.next;
    if (this.busy[slot] === true) return Promise.reject(new Error(`more than ${RING} argmax launches waiting to be read back`));
    this.next = (slot + 1) % RING;
    // ~8 elements per invocation, at most GROUPS workgroups
    const groups = Math.min(GROUPS, Math.ceil(n / (8 * WORKGROUP)));
    const key = `${offset},${n}`;
    if (key !== this.lastParams) {
      this.device.queue.writeBuffer(this.params, 0, new Uint32Array([offset, n, groups, 0]));
      this.lastParams = key;
    }
    let bindGroup = this.bindGroups.get(logits);
    if (bindGroup === undefined) {
      bindGroup = this.device.createBindGroup({
        layout: this.partialsPipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: logits } },
          { binding: 1, resource: { buffer: this.partials } },
          { binding: 2, resource: { buffer: this.params } },
        ],
      });
      this.bindGroups.set(logits, bindGroup);
    }
    const readback = this.readbacks[slot] as GPUBuffer;
    const encoder = this.device.createCommandEncoder({ label: "hearth-argmax" });
    const pass = encoder.beginComputePass();
    pass.setPipeline(this.partialsPipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups);
    pass.setPipeline(this.finalPipeline);
    pass.setBindGroup(0, this.finalBindGroup);
    pass.dispatchWorkgroups(1);
    pass.end();
    if (feed !== undefined) encoder.copyBufferToBuffer(this.result, 0, feed.buffer, feed.byteOffset, 4);
    encoder.copyBufferToBuffer(this.result, 0, readback, 0, 8);
    this.device.queue.submit([encoder.finish()]);
    this.busy[slot] = true;
    return readback.mapAsync(GPUMapMode.READ).then(
      () => {
        const [index, nan] = new Uint32Array(readback.getMappedRange().slice(0));
        readback.unmap();
        this.busy[slot] = false;
        if (nan !== 0) throw new NonFiniteLogitsError("the logits contain NaN");
        return index as number;
      },
      (err: unknown) => {
        this.busy[slot] = false;
        throw err;
      },
    );
  }

  dispose(): void {
    this.result.destroy();
    this.partials.destroy();
    for (const r of this.readbacks) r.destroy();
    this.params.destroy();
  }
}
