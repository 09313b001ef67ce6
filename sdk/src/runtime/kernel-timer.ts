/**
 * Per-kernel GPU time from WebGPU timestamp queries (the `kernelTiming` load option; issue 17 asks for
 * per-kernel GPU time next to launches per token, to see which kernels the GPU's share of a step goes to).
 *
 * While timing, webgpu-dispatch.ts gives every launch its own compute pass whose beginning and end write a
 * timestamp pair. That costs launch speed (a pass per dispatch instead of one per submit), so timed runs
 * say how long kernels run on the GPU, not how fast decoding is. Before each submit the pairs are resolved
 * into a buffer and copied to a mappable one; after it, the copy is mapped and the differences are added
 * to the kernel's total. Browsers may quantize timestamps (Chrome: to 100 us unless its WebGPU developer
 * features are on; Dawn in Node: the `timestamp_quantization` toggle), which makes single short kernels read
 * 0 or one quantum; Node benchmarks turn the toggle off (HEARTH_DAWN_FLAGS).
 */

export interface KernelGpuTime {
  /** Launches whose timestamps were read. */
  launches: number;
  /** Their summed GPU time (end-of-pass minus beginning-of-pass), milliseconds. */
  totalMs: number;
}

export interface KernelTimingStats {
  byKernel: Record<string, KernelGpuTime>;
  /** Launches not timed because a submit held more than `capacity` launches. */
  untimed: number;
  /** Submits whose timestamps are still being read back (wait for 0 before reading byKernel). */
  pendingReads: number;
}

interface Batch {
  read: GPUBuffer;
  names: string[];
}

export class KernelTimer {
  readonly stats: KernelTimingStats = { byKernel: {}, untimed: 0, pendingReads: 0 };
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly spare: GPUBuffer[] = [];
  private names: string[] = [];
  private resolved: Batch | undefined;

  /** `capacity`: launches timed per submit (a decode step is ~50-300 launches, a prefill chunk similar). */
  constructor(
    private readonly device: GPUDevice,
    private readonly capacity = 2048,
  ) {
    if (!device.features.has("timestamp-query")) {
      throw new Error("kernel timing needs the device feature timestamp-query (the adapter does not offer it)");
    }
    this.querySet = device.createQuerySet({ type: "timestamp", count: 2 * capacity });
    this.resolveBuffer = device.createBuffer({ size: 16 * capacity, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  }

  /** The pass descriptor for the next launch of `kernel` (untimed once this submit's capacity is used). */
  passFor(kernel: string): GPUComputePassDescriptor {
    const i = this.names.length;
    if (i >= this.capacity) {
      this.stats.untimed++;
      return {};
    }
    this.names.push(kernel);
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Append the resolve and the copy to `encoder`, the last commands before it is submitted. */
  beforeSubmit(encoder: GPUCommandEncoder): void {
    const n = this.names.length;
    if (n === 0) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuffer, 0);
    const read = this.spare.pop() ?? this.device.createBuffer({ size: 16 * this.capacity, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, read, 0, 16 * n);
    this.resolved = { read, names: this.names };
    this.names = [];
  }

  /** Read the submitted batch's timestamps back (asynchronously) into stats.byKernel. */
  afterSubmit(): void {
    const batch = this.resolved;
    if (batch === undefined) return;
    this.resolved = undefined;
    this.stats.pendingReads++;
    batch.read
      .mapAsync(GPUMapMode.READ, 0, 16 * batch.names.length)
      .then(() => {
        const t = new BigUint64Array(batch.read.getMappedRange(0, 16 * batch.names.length));
        batch.names.forEach((name, i) => {
          const begin = t[2 * i] as bigint;
          const end = t[2 * i + 1] as bigint;
          const entry = (this.stats.byKernel[name] ??= { launches: 0, totalMs: 0 });
          entry.launches++;
          // A pair can come back reversed or zero when the implementation could not time the pass.
          if (end > begin) entry.totalMs += Number(end - begin) / 1e6;
        });
        batch.read.unmap();
        this.spare.push(batch.read);
      })
      .catch(() => {
        // The device was lost or destroyed: these launches stay untimed.
        this.stats.untimed += batch.names.length;
      })
      .finally(() => {
        this.stats.pendingReads--;
      });
  }

  dispose(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
    for (const b of this.spare) b.destroy();
    this.spare.length = 0;
  }
}
