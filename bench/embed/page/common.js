// Shared by both benchmark workers: message loop and the timing loop, so both runtimes are timed the same way.

export const log = (text) => self.postMessage({ type: "log", text });

function plainError(err) {
  return { name: err?.name ?? "Error", message: String(err?.message ?? err), stack: err?.stack ?? null };
}

/** Answer {id, task} messages with tasks[task.task](task). */
export function serve(tasks) {
  self.onmessage = async (ev) => {
    const { id, task } = ev.data;
    try {
      const fn = tasks[task.task];
      if (fn === undefined) throw new Error(`unknown task ${task.task}`);
      self.postMessage({ id, ok: true, result: await fn(task) });
    } catch (err) {
      self.postMessage({ id, ok: false, error: plainError(err) });
    }
  };
}

/**
 * Time `embed(texts.slice(0, batch))`: `warmup` untimed calls (the first pays first-use shader/JIT
 * compilation), then `runs` timed calls, each one batch of `batch` texts. `embed` must resolve only once
 * the vectors are on the CPU (both runtimes read them back), so the wall time covers the whole call.
 */
export async function timeBatches(embed, texts, { batch, runs, warmup }) {
  if (texts.length < batch) throw new Error(`need ${batch} texts, got ${texts.length}`);
  const chunk = texts.slice(0, batch);
  const warmupMs = [];
  for (let i = 0; i < warmup; i++) {
    const t0 = performance.now();
    await embed(chunk);
    warmupMs.push(performance.now() - t0);
  }
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = await embed(chunk);
    ms.push(performance.now() - t0);
    if (out.length !== batch) throw new Error(`embed returned ${out.length} vectors for ${batch} texts`);
  }
  return { batch, warmupMs, ms, sentencesPerSec: ms.map((m) => batch / (m / 1000)) };
}
