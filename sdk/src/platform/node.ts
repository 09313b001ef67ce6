/**
 * Whether this is Node, without importing anything Node-only: the SDK runs in browsers and Workers too.
 * Loaders that must read package files from disk in Node (tvmjs, xgrammar) ask here.
 */
export interface NodeProcessLike {
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}

/** Node's `process`, or undefined outside Node. */
export function nodeProcess(): NodeProcessLike | undefined {
  const proc: unknown = (globalThis as { process?: unknown }).process;
  if (typeof proc !== "object" || proc === null) return undefined;
  const p = proc as NodeProcessLike;
  return typeof p.versions?.node === "string" ? p : undefined;
}
