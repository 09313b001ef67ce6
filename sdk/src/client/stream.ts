/** A push-fed async iterable: the engine's chunks in, `for await` out (one consumer). */

export class ChunkStream<Chunk, Final = unknown> implements AsyncIterable<Chunk> {
  /** Called when the consumer stops early (break / return) or abort() is called. */
  onCancel: (() => void) | undefined;
  readonly #buffer: Chunk[] = [];
  #waiting: { resolve: (r: IteratorResult<Chunk>) => void; reject: (e: unknown) => void } | null = null;
  #done = false;
  #error: { error: unknown } | null = null;
  #iterated = false;
  #final: Final | undefined;
  #finalWaiters: { resolve: (f: Final) => void; reject: (e: unknown) => void }[] = [];

  push(chunk: Chunk): void {
    if (this.#done) return;
    const w = this.#waiting;
    if (w !== null) {
      this.#waiting = null;
      w.resolve({ value: chunk, done: false });
    } else {
      this.#buffer.push(chunk);
    }
  }

  end(final: Final): void {
    if (this.#done) return;
    this.#done = true;
    this.#final = final;
    for (const f of this.#finalWaiters) f.resolve(final);
    this.#finalWaiters = [];
    this.#wake();
  }

  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = { error };
    // Cancelled: the consumer asked to stop, so chunks it has not read yet are dropped.
    if ((error as { name?: unknown } | null)?.name === "AbortError") this.#buffer.length = 0;
    for (const f of this.#finalWaiters) f.reject(error);
    this.#finalWaiters = [];
    this.#wake();
  }

  /** Stop the request: the iterator ends (after buffered chunks) and the engine stops within a token. */
  abort(): void {
    if (this.#done) return;
    this.onCancel?.();
  }

  /**
   * The whole response the engine assembled (the non-stream object: full text, usage), once the
   * stream has ended. Rejects like the iterator.
   */
  finalResponse(): Promise<Final> {
    if (this.#error !== null) return Promise.reject(this.#error.error);
    if (this.#done) return Promise.resolve(this.#final as Final);
    return new Promise((resolve, reject) => this.#finalWaiters.push({ resolve, reject }));
  }

  #wake(): void {
    const w = this.#waiting;
    if (w === null) return;
    this.#waiting = null;
    if (this.#error !== null) w.reject(this.#error.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Chunk> {
    if (this.#iterated) throw new TypeError("this stream can be iterated only once");
    this.#iterated = true;
    return {
      next: (): Promise<IteratorResult<Chunk>> => {
        const chunk = this.#buffer.shift();
        if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false });
        if (this.#error !== null) return Promise.reject(this.#error.error);
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
      },
      return: (): Promise<IteratorResult<Chunk>> => {
        if (!this.#done) {
          this.onCancel?.();
          this.#done = true;
        }
        this.#buffer.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
