/**
 * The part of tvmjs a decoder needs beyond tvmjs-types.ts: global functions (KV-cache bookkeeping),
 * shape tuples, typed scalars and tensor views. Typed without `any`; test/llm.test.ts checks at compile
 * time that tvmjs's own classes satisfy these interfaces.
 */
import type { TvmInstance, TvmObject, TvmPackedFunc, TvmTensor } from "./tvmjs-types.js";

/** A typed number for PackedFunc arguments (tvmjs `Scalar`); plain JS numbers pass as float64. */
export interface TvmScalar {
  value: number;
  dtype: string;
}

export interface TvmViewTensor extends TvmTensor {
  /** A view with another shape over the same storage (same number of bytes). */
  view(shape: number[], dtype?: string): TvmTensor;
}

export interface TvmLLMInstance extends TvmInstance {
  getGlobalFunc(name: string): TvmPackedFunc;
  makeShapeTuple(shape: number[]): TvmObject;
  scalar(value: number, dtype: string): TvmScalar;
}

const LLM_METHODS = ["getGlobalFunc", "makeShapeTuple", "scalar", "beginScope", "endScope", "detachFromCurrentScope"] as const;

/** Narrow a tvmjs instance to {@link TvmLLMInstance}, failing clearly on an incompatible runtime. */
export function asLLMInstance(tvm: TvmInstance): TvmLLMInstance {
  const rec = tvm as unknown as Record<string, unknown>;
  const missing = LLM_METHODS.filter((m) => typeof rec[m] !== "function");
  if (missing.length > 0) {
    throw new Error(`this tvmjs runtime lacks ${missing.join(", ")}: it cannot drive a decoder (need @mlc-ai/web-runtime 0.27)`);
  }
  return tvm as TvmLLMInstance;
}

/** A TVM tensor (duck-typed: tvmjs returns class instances we do not import). */
export function isTvmTensor(x: unknown): x is TvmViewTensor {
  return (
    typeof x === "object" &&
    x !== null &&
    Array.isArray((x as { shape?: unknown }).shape) &&
    typeof (x as { dtype?: unknown }).dtype === "string" &&
    typeof (x as { view?: unknown }).view === "function"
  );
}
