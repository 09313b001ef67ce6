/**
 * Greedy token selection on the GPU: the argmax of a float32 logits buffer, so that a greedy decode step
 * reads back 8 bytes instead of the whole vocabulary (600 KB for Qwen2.5's 151936 logits) and skips the
 * host-side scan (~0.6 ms per token on the H200 host, docs/benchmarks.md).
 *
 * Same answer as sample/argmax.ts's argmax: the first index of the largest value, +Infinity wins like any value,
 * all -Infinity gives index 0, and a NaN anywhere is reported (NonFiniteLogitsError) instead of a token.
 * One workgroup of 256 invocations: each scans a strided slice, then a tree reduction in workgroup memory.
 */
import { NonFiniteLogitsError } from "../sample/argmax.js";

const WORKGROUP = 256;
const INVALID = 0xffffffff;

const SHADER = /* wgsl */ `
struct Params { offset: u32, n: u32 }
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> result: array<u32, 2>;
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

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) t: u32) {
  var bv = 0.0;
  var bi = ${INVALID}u;
  var nan = 0u;
  for (var i = t; i < params.n; i += ${WORKGROUP}u) {
    let v = logits[params.offset + i];
    if (isNaN(v)) { nan = 1u; } else if (beats(v, i, bv, bi)) { bv = v; bi = i; }
  }
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
  private readonly pipeline: GPUComputePipeline;
  private readonly result: GPUBuffer;
  private readonly readbacks: GPUBuffer[] = [];
  /** readbacks[i] is mapped or waiting to be (its token not read yet). */
  private readonly busy: boolean[] = [];
  private next = 0;
  private readonly params: GPUBuffer;
  private readonly bindGroups = new WeakMap<GPUBuffer, GPUBindGroup>();
  private lastParams = "";

  constructor(private readonly device: GPUDevice) {
    const module = device.createShaderModule({ code: SHADER, label: "hearth-argmax" });
    this.pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: "hearth-argmax" });
    this.result = device.createBuffer({ size: 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: "hearth-argmax-result" });
    for (let i = 0; i < RING; i++) {
      this.readbacks.push(device.createBuffer({ size: 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: `hearth-argmax-readback-${i}` }));
      this.busy.push(false);
    }
    this.params = device.createBuffer({ size: 8, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: "hearth-argmax-params" });
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
    const key = `${offset},${n}`;
    if (key !== this.lastParams) {
      this.device.queue.writeBuffer(this.params, 0, new Uint32Array([offset, n]));
      this.lastParams = key;
    }
    let bindGroup = this.bindGroups.get(logits);
    if (bindGroup === undefined) {
      bindGroup = this.device.createBindGroup({
        layout: this.pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: logits } },
          { binding: 1, resource: { buffer: this.result } },
          { binding: 2, resource: { buffer: this.params } },
        ],
      });
      this.bindGroups.set(logits, bindGroup);
    }
    const readback = this.readbacks[slot] as GPUBuffer;
    const encoder = this.device.createCommandEncoder({ label: "hearth-argmax" });
    const pass = encoder.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bindGroup);
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
    for (const r of this.readbacks) r.destroy();
    this.params.destroy();
  }
}
