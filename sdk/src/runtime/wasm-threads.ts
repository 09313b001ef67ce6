/**
 * Worker threads for a threaded wasm-cpu library (the `wasm-cpu-mt` target).
 *
 * Such a module imports its memory (`env.memory`, shared, limits in its import section) instead of
 * exporting it, and its TVMBackendParallelLaunch hands the tasks of every parallel loop to workers
 * parked inside the module (compile/hearth/runtime/threads/hearth_threads.cc). tvmjs instantiates the
 * module itself, without emscripten's JS (whose pthreads are that glue), so the pool is Hearth's:
 * N Workers each instantiate the same compiled module on the same memory, move their stack pointer to
 * a stack of their own (`stackRestore`, before any call that uses the stack: every instance starts
 * with the main thread's), and call `hearth_thread_worker(id)`, which never returns. The module's
 * start function initialises memory only in the first instance (wasm-ld's shared-memory guard), and
 * the workers never run the constructors (`_initialize`): they run kernel bodies only.
 *
 * Shared memory needs SharedArrayBuffer, which a browser gives only to cross-origin isolated pages
 * (COOP `same-origin` + COEP `require-corp` or `credentialless`); elsewhere use the package's
 * single-thread `wasm-cpu` build (see {@link wasmThreadsAvailable}).
 */
import { nodeProcess } from "../platform/node.js";

/** Limits of a memory import, in 64 KiB pages. */
export interface MemoryLimits {
  initial: number;
  maximum: number | undefined;
  shared: boolean;
}

/** Thrown when a threaded library cannot run here; `reason` says why and what to use instead. */
export class WasmThreadsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WasmThreadsUnavailableError";
  }
}

function readLeb(bytes: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos++];
    if (b === undefined) throw new Error("truncated wasm (LEB128 past the end)");
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return [result, pos];
  }
}

/**
 * The limits of the module's `env.memory` import, or undefined when it imports no memory (a
 * single-thread build exports its own). Reads the import section only.
 */
export function importedMemoryLimits(wasm: Uint8Array): MemoryLimits | undefined {
  if (wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) {
    throw new Error("not a wasm module (bad magic)");
  }
  let pos = 8;
  const text = new TextDecoder();
  const name = (): string => {
    const [len, p] = readLeb(wasm, pos);
    pos = p + len;
    return text.decode(wasm.slice(p, p + len));
  };
  while (pos < wasm.length) {
    const id = wasm[pos++];
    const [size, body] = readLeb(wasm, pos);
    pos = body;
    if (id !== 2) {
      pos = body + size;
      continue;
    }
    let count: number;
    [count, pos] = readLeb(wasm, pos);
    for (let i = 0; i < count; i++) {
      const mod = name();
      const field = name();
      const kind = wasm[pos++];
      if (kind === 0) {
        pos = readLeb(wasm, pos)[1]; // function: type index
      } else if (kind === 1) {
        pos++; // table: reftype, then limits
        const flags = wasm[pos++] ?? 0;
        pos = readLeb(wasm, pos)[1];
        if (flags & 1) pos = readLeb(wasm, pos)[1];
      } else if (kind === 2) {
        const flags = wasm[pos++] ?? 0;
        let initial: number;
        let maximum: number | undefined;
        [initial, pos] = readLeb(wasm, pos);
        if (flags & 1) [maximum, pos] = readLeb(wasm, pos);
        if (mod === "env" && field === "memory") return { initial, maximum, shared: (flags & 2) !== 0 };
      } else if (kind === 3) {
        pos += 2; // global: valtype, mutability
      } else {
        throw new Error(`unknown import kind ${kind} in the wasm import section`);
      }
    }
    return undefined;
  }
  return undefined;
}

/** Whether this wasm is a threaded wasm-cpu build (imports a shared memory). */
export function isThreadedWasm(wasm: Uint8Array): boolean {
  return importedMemoryLimits(wasm)?.shared === true;
}

/**
 * Whether a threaded library can run in this realm: undefined if so, else the reason (no
 * SharedArrayBuffer, or a page that is not cross-origin isolated).
 */
export function wasmThreadsUnavailableReason(): string | undefined {
  if (typeof SharedArrayBuffer === "undefined") {
    return "SharedArrayBuffer is not available here: browsers enable it only on cross-origin isolated pages (serve the page with `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`)";
  }
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  if (isolated === false) {
    return "the page is not cross-origin isolated (serve it with `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`)";
  }
  return undefined;
}

/** True when a threaded library can run here (see {@link wasmThreadsUnavailableReason}). */
export function wasmThreadsAvailable(): boolean {
  return wasmThreadsUnavailableReason() === undefined;
}

/** Workers to start by default: one fewer than the logical cores (the loading thread runs tasks too), 1..7. */
export function defaultWasmThreads(): number {
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(7, cores - 1));
}

/** The shared memory a threaded module imports, sized from its import. */
export function createSharedMemory(limits: MemoryLimits): WebAssembly.Memory {
  const reason = wasmThreadsUnavailableReason();
  if (reason !== undefined) {
    throw new WasmThreadsUnavailableError(
      `this model library is the threaded wasm-cpu build (wasm-cpu-mt), which needs shared memory: ${reason}. Load the package's single-thread "wasm-cpu" target instead.`,
    );
  }
  if (!limits.shared || limits.maximum === undefined) {
    throw new Error("the wasm imports env.memory but not as a shared memory with a maximum: not a Hearth wasm-cpu-mt build");
  }
  return new WebAssembly.Memory({ initial: limits.initial, maximum: limits.maximum, shared: true });
}

/** What each worker runs: plain JS, so it can be started from a string in browsers and Node alike. */
const WORKER_SOURCE = `
"use strict";
const isNode = typeof process === "object" && typeof process.versions === "object" && typeof process.versions.node === "string";
const port = isNode ? require("node:worker_threads").parentPort : self;
const post = (m) => port.postMessage(m);
const onMessage = (e) => {
  const msg = isNode ? e : e.data;
  let inst;
  try {
    const imports = {};
    for (const imp of WebAssembly.Module.imports(msg.module)) {
      imports[imp.module] = imports[imp.module] || {};
      if (imp.kind === "memory") imports[imp.module][imp.name] = msg.memory;
      else if (imp.name === "emscripten_notify_memory_growth") {
        // A kernel's workspace allocation can grow the shared memory from here; the loading thread's
        // views follow on their own (tvmjs compares memory.buffer on each access).
        imports[imp.module][imp.name] = () => {};
      } else if (imp.kind === "function") {
        imports[imp.module][imp.name] = () => { throw new Error(imp.module + "." + imp.name + " was called on a wasm worker thread (only kernel bodies run there)"); };
      }
    }
    inst = new WebAssembly.Instance(msg.module, imports);
    inst.exports.stackRestore(msg.stackTop);
    post({ ok: true });
    inst.exports.hearth_thread_worker(msg.id);
  } catch (err) {
    // Never leave the launching thread spinning on a task this worker took: mark the pool failed.
    if (inst !== undefined) inst.exports.hearth_threads_poison();
    post({ ok: false, error: String(err && err.stack || err) });
  }
};
if (isNode) port.on("message", onMessage); else port.onmessage = onMessage;
`;

interface ThreadHandle {
  terminate(): void;
  post(msg: unknown): void;
  onMessage(cb: (msg: unknown) => void): void;
  onError(cb: (err: unknown) => void): void;
}

interface NodeWorker {
  postMessage(msg: unknown): void;
  on(event: string, cb: (arg: unknown) => void): void;
  terminate(): Promise<number>;
  unref(): void;
}

function spawnThread(): ThreadHandle {
  const proc = nodeProcess();
  if (proc?.getBuiltinModule !== undefined) {
    const { Worker } = proc.getBuiltinModule("node:worker_threads") as { Worker: new (src: string, opts: { eval: boolean }) => NodeWorker };
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref(); // a parked worker must not keep the process alive
    return {
      terminate: () => void w.terminate(),
      post: (m) => w.postMessage(m),
      onMessage: (cb) => w.on("message", cb),
      onError: (cb) => w.on("error", cb),
    };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  try {
    const w = new Worker(url);
    return {
      terminate: () => w.terminate(),
      post: (m) => w.postMessage(m),
      onMessage: (cb) => {
        w.onmessage = (e: MessageEvent) => cb(e.data);
      },
      onError: (cb) => {
        w.onerror = (e: ErrorEvent) => cb(e.message);
      },
    };
  } finally {
    // The Worker has fetched the blob by the time it runs; revoking later would leak it.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}

/** The exports the pool needs from the main instance. */
export interface ThreadedExports {
  TVMWasmAllocSpace(size: number): number;
  hearth_threads_ready(): number;
  hearth_threads_use(n: number): number;
  hearth_threads_launches(): number;
  hearth_threads_set_spin(polls: number): void;
  hearth_threads_worker_tasks(): number;
}

export function asThreadedExports(exports: WebAssembly.Exports): ThreadedExports {
  const need = [
    "TVMWasmAllocSpace",
    "hearth_threads_ready",
    "hearth_threads_use",
    "hearth_threads_launches",
    "hearth_threads_set_spin",
    "hearth_threads_worker_tasks",
    "hearth_threads_poison",
    "stackRestore",
    "hearth_thread_worker",
  ];
  const missing = need.filter((n) => typeof exports[n] !== "function");
  if (missing.length > 0) throw new Error(`the threaded wasm lacks the exports ${missing.join(", ")}: not a Hearth wasm-cpu-mt build`);
  return exports as unknown as ThreadedExports;
}

export interface WasmThreadPool {
  /** Workers in use (the calling thread runs task 0 of each parallel loop besides them). */
  readonly workers: number;
  /** Parallel loops run on the workers so far (a counter kept by the module). */
  launches(): number;
  /** Tasks of those loops that the workers ran (the loading thread runs the ones nobody else took). */
  workerTasks(): number;
  /** How long an idle worker polls for the next parallel loop before it sleeps, in polls of one counter. */
  setSpin(polls: number): void;
  /** Stop the workers; parallel loops run on the calling thread from then on. */
  dispose(): void;
}

/**
 * Polls of the launch counter before an idle worker sleeps. Between a decode step's parallel loops the
 * loading thread runs serial kernels and the VM; a worker that fell asleep meanwhile wakes too late to
 * help (a launch never waits for it). Measured in Chromium (SmolLM2-135M, 2 threads, docs/benchmarks.md):
 * 16384 polls gave decode 28.4 tok/s, slower than one thread (33.4); 262144 gave 52.9. Spinning costs a
 * core that other programs may want, which is why it is bounded at all.
 */
export const DEFAULT_SPIN_POLLS = 1 << 18;

/** Bytes of stack per worker: kernels keep tiles under 1 KiB on the stack, the rest in the workspace pool. */
const WORKER_STACK_BYTES = 1 << 20;

/**
 * Start `workers` threads on a threaded module instantiated (by tvmjs) on `memory`, and wait until
 * all are parked in the module. `module` is the compiled module (the same bytes), `exports` the
 * main instance's exports.
 */
export async function startWasmThreads(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  exports: WebAssembly.Exports,
  workers: number,
  timeoutMs = 30_000,
  spinPolls = DEFAULT_SPIN_POLLS,
): Promise<WasmThreadPool> {
  if (!Number.isInteger(workers) || workers < 1 || workers > 63) throw new RangeError(`workers must be an integer in 1..63, not ${workers}`);
  const ex = asThreadedExports(exports);
  if (ex.hearth_threads_ready() !== 0) throw new Error("this wasm instance already has worker threads");
  const handles: ThreadHandle[] = [];
  const started: Promise<void>[] = [];
  for (let id = 1; id <= workers; id++) {
    const base = ex.TVMWasmAllocSpace(WORKER_STACK_BYTES);
    if (base === 0) throw new Error("out of wasm memory for a worker stack");
    const h = spawnThread();
    handles.push(h);
    started.push(
      new Promise<void>((resolve, reject) => {
        h.onMessage((m) => {
          const r = m as { ok: boolean; error?: string };
          if (r.ok) resolve();
          else reject(new Error(`wasm worker thread ${id} failed to start: ${r.error ?? "unknown error"}`));
        });
        h.onError((err) => reject(new Error(`wasm worker thread ${id} failed: ${String(err)}`)));
      }),
    );
    h.post({ module, memory, id, stackTop: (base + WORKER_STACK_BYTES) & ~15 });
  }
  const dispose = (): void => {
    ex.hearth_threads_use(0);
    for (const h of handles) h.terminate();
  };
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`wasm worker threads did not start within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(started), timeout]);
      // "ok" is posted just before a worker enters the module; wait until each has counted itself in.
      const t0 = Date.now();
      while (ex.hearth_threads_ready() < workers) {
        if (Date.now() - t0 > timeoutMs) throw new Error(`only ${ex.hearth_threads_ready()} of ${workers} wasm worker threads are ready`);
        await new Promise((r) => setTimeout(r, 1));
      }
    } finally {
      clearTimeout(timer);
    }
    ex.hearth_threads_set_spin(spinPolls);
    const used = ex.hearth_threads_use(workers);
    return {
      workers: used,
      launches: () => ex.hearth_threads_launches(),
      workerTasks: () => ex.hearth_threads_worker_tasks(),
      setSpin: (polls) => ex.hearth_threads_set_spin(polls),
      dispose,
    };
  } catch (err) {
    dispose();
    throw err;
  }
}
