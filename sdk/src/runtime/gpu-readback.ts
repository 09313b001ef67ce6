/**
 * Reads a float32 range of a GPU buffer back to the host through one persistent mappable buffer.
 *
 * tvmjs's device-to-host copy creates a mappable buffer for every copy, maps it, stores its bytes into the
 * wasm heap, and the caller then copies them out of the heap again: for a decode step's 600 KB of logits
 * (Qwen2.5's 151936) that is a buffer created and destroyed and three copies per token. Here the staging
 * buffer is created once (grown when a larger range comes) and the mapped bytes are copied once, into the
 * Float32Array the caller gets (its own: the staging buffer is reused by the next call).
 */

export class GpuReadback {
  private staging: GPUBuffer | undefined;

  constructor(private readonly device: GPUDevice) {}

  /**
   * `n` float32 values of `source` from element `offset`. Queued after everything already submitted to the
   * device's queue, so the caller submits the producing work first.
   */
  async read(source: GPUBuffer, offset: number, n: number): Promise<Float32Array> {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`read back ${n} values`);
    if (!Number.isSafeInteger(offset) || offset < 0 || (offset + n) * 4 > source.size) {
      throw new RangeError(`values [${offset}, ${offset + n}) exceed a ${source.size}-byte buffer`);
    }
    const bytes = n * 4;
    if (this.staging === undefined || this.staging.size < bytes) {
      this.staging?.destroy();
      this.staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: "hearth-readback" });
    }
    const staging = this.staging;
    const encoder = this.device.createCommandEncoder({ label: "hearth-readback" });
    encoder.copyBufferToBuffer(source, offset * 4, staging, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    try {
      return new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    } finally {
      staging.unmap();
    }
  }

  dispose(): void {
    this.staging?.destroy();
    this.staging = undefined;
  }
}
