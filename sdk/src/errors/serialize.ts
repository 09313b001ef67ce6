/**
 * Engine-level errors (requests, the wire protocol, lifecycle) and their transport across a Worker
 * boundary: {@link serializeError} turns any thrown value into plain data (name, message, the error's own
 * JSON-safe fields, stack); {@link deserializeError} rebuilds an instance of the registered class of that
 * name, so `err instanceof ContextWindowExceededError` and `err.maxTotalSeqLen` work on the client.
 * Errors of classes the client does not know come back as {@link RemoteError} with the name preserved.
 */
import { AbortError, EngineNotLoadedError, InvalidMessageError, InvalidRequestError, RemoteError, WorkerError, type JsonValue } from "./engine.js";
import {
  DeviceError,
  DownloadError,
  IntegrityError,
  PackageCompatibilityError,
  PackageManifestError,
  QuotaError,
  VariantSelectionError,
  ChatConfigError,
} from "./load.js";
import { DeviceLostError, WebGPUCapabilityError, WebGPUUnavailableError } from "./runtime.js";
import {
  ChatMessageError,
  ChatTemplateError,
  GenerationFinishedError,
  GrammarError,
  InvalidLogitsError,
  NonFiniteLogitsError,
  SamplingParamsError,
  TokenizerLoadError,
} from "./text.js";
import { ContextWindowExceededError, DecoderStateError, EncoderConfigError, EncoderStateError, InputTooLongError, SequenceTooLongError } from "./model.js";

/** An error as plain data. */
export interface SerializedError {
  name: string;
  message: string;
  /** Own enumerable fields of the error that are JSON values (e.g. param, maxTotalSeqLen). */
  fields: Record<string, JsonValue>;
  stack: string | null;
  /** The `cause`, serialized, when it is an Error. */
  cause: SerializedError | null;
}

type ErrorClass = abstract new (...args: never[]) => Error;

const registry = new Map<string, ErrorClass>();

/** The class errors named `name` are rebuilt as, or undefined (they come back as RemoteError). */
export function registeredErrorClass(name: string): ErrorClass | undefined {
  return registry.get(name);
}

/** Make errors named `name` come back as instances of `cls` (for error classes added later). */
export function registerErrorClass(name: string, cls: ErrorClass): void {
  registry.set(name, cls);
}

const BUILTIN: [string, ErrorClass][] = [
  ["InvalidRequestError", InvalidRequestError],
  ["InvalidMessageError", InvalidMessageError],
  ["AbortError", AbortError],
  ["EngineNotLoadedError", EngineNotLoadedError],
  ["WorkerError", WorkerError],
  ["ContextWindowExceededError", ContextWindowExceededError],
  ["DecoderStateError", DecoderStateError],
  ["WebGPUUnavailableError", WebGPUUnavailableError],
  ["WebGPUCapabilityError", WebGPUCapabilityError],
  ["NonFiniteLogitsError", NonFiniteLogitsError],
  ["ChatMessageError", ChatMessageError],
  ["ChatTemplateError", ChatTemplateError],
  ["TokenizerLoadError", TokenizerLoadError],
  ["GenerationFinishedError", GenerationFinishedError],
  ["GrammarError", GrammarError],
  ["InvalidLogitsError", InvalidLogitsError],
  ["SamplingParamsError", SamplingParamsError],
  ["IntegrityError", IntegrityError],
  ["PackageManifestError", PackageManifestError],
  ["ChatConfigError", ChatConfigError],
  ["PackageCompatibilityError", PackageCompatibilityError],
  ["DownloadError", DownloadError],
  ["QuotaError", QuotaError],
  ["DeviceError", DeviceError],
  ["DeviceLostError", DeviceLostError],
  ["VariantSelectionError", VariantSelectionError],
  ["EncoderConfigError", EncoderConfigError],
  ["EncoderStateError", EncoderStateError],
  ["InputTooLongError", InputTooLongError],
  ["SequenceTooLongError", SequenceTooLongError],
  ["TypeError", TypeError],
  ["RangeError", RangeError],
  ["SyntaxError", SyntaxError],
];
for (const [name, cls] of BUILTIN) registry.set(name, cls);

function toJson(value: unknown, depth = 0): JsonValue | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (depth > 4) return undefined;
  if (Array.isArray(value)) {
    const out: JsonValue[] = [];
    for (const v of value) out.push(toJson(v, depth + 1) ?? null);
    return out;
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const j = toJson(v, depth + 1);
      if (j !== undefined) out[k] = j;
    }
    return out;
  }
  return undefined;
}

const RESERVED = new Set(["name", "message", "stack", "cause"]);

/** Any thrown value as plain, structured-clone-safe data. */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (err instanceof Error) {
    const fields: Record<string, JsonValue> = {};
    const source = err instanceof RemoteError ? { ...err.fields } : (err as unknown as Record<string, unknown>);
    for (const key of Object.keys(source)) {
      if (RESERVED.has(key)) continue;
      const j = toJson((source as Record<string, unknown>)[key]);
      if (j !== undefined) fields[key] = j;
    }
    const cause = (err as { cause?: unknown }).cause;
    return {
      name: err.name,
      message: err.message,
      fields,
      stack: typeof err.stack === "string" ? err.stack : null,
      cause: cause instanceof Error && depth < 3 ? serializeError(cause, depth + 1) : null,
    };
  }
  // DOMException (e.g. an AbortSignal's reason) is not an Error subclass in every runtime.
  const rec = err as { name?: unknown; message?: unknown } | null;
  if (typeof rec === "object" && rec !== null && typeof rec.name === "string" && typeof rec.message === "string") {
    return { name: rec.name, message: rec.message, fields: {}, stack: null, cause: null };
  }
  return { name: "Error", message: String(err), fields: {}, stack: null, cause: null };
}

/** Check that `data` looks like a {@link SerializedError} (it came over a wire). */
export function isSerializedError(data: unknown): data is SerializedError {
  const d = data as Partial<SerializedError> | null;
  return (
    typeof d === "object" && d !== null && typeof d.name === "string" && typeof d.message === "string" && typeof d.fields === "object" && d.fields !== null
  );
}

/**
 * Rebuild an error: an instance of the class registered under its name (constructor not called; name,
 * message, fields and stack set as own properties), else a {@link RemoteError}. The remote stack is kept
 * below the local one, so both ends show.
 */
export function deserializeError(data: SerializedError): Error {
  const cls = registry.get(data.name);
  let err: Error;
  if (cls === undefined) {
    err = new RemoteError(data.name, data.message, data.fields);
  } else {
    err = Object.create(cls.prototype as object) as Error;
    Object.defineProperty(err, "message", { value: data.message, writable: true, configurable: true, enumerable: false });
    for (const [k, v] of Object.entries(data.fields)) {
      Object.defineProperty(err, k, { value: v, writable: true, configurable: true, enumerable: true });
    }
  }
  Object.defineProperty(err, "name", { value: data.name, writable: true, configurable: true, enumerable: false });
  const local = new Error(data.message).stack ?? "";
  const stack = data.stack === null ? local : `${local}\n    --- remote ---\n${data.stack}`;
  Object.defineProperty(err, "stack", { value: stack, writable: true, configurable: true, enumerable: false });
  if (data.cause !== null) {
    Object.defineProperty(err, "cause", { value: deserializeError(data.cause), writable: true, configurable: true, enumerable: false });
  }
  return err;
}
