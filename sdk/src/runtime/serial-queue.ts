/**
 * Run async jobs one at a time, in call order. The GPU work of a model (tvmjs scopes, the KV cache,
 * the shared logits buffer) must never interleave, so every public model method goes through one queue.
 * A failed job does not stop later ones.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  /** Jobs queued or running. */
  get size(): number {
    return this.pending;
  }

  run<T>(job: () => Promise<T> | T): Promise<T> {
    this.pending++;
    const result = this.tail.then(job);
    this.tail = result
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.pending--;
      });
    return result;
  }
}
