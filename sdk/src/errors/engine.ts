/** Engine-level errors: requests, the wire protocol, lifecycle. */

/**
 * A request the engine refuses before running it: a bad field (`param` says which, as a dot path such
 * as "messages[1].role"), an unsupported option, or an unknown field. Mirrors OpenAI's 400 errors.
 */
export class InvalidRequestError extends Error {
  override readonly name = "InvalidRequestError";
  /** The offending field ("temperature", "messages[0].content"), or null for the whole request. */
  readonly param: string | null;
  /** "invalid_type" | "invalid_value" | "unknown_parameter" | "unsupported_parameter" | "missing_parameter". */
  readonly code: string;
  constructor(message: string, param: string | null = null, code = "invalid_value") {
    super(message);
    this.param = param;
    this.code = code;
  }
}

/** A protocol message that is not one the engine understands (never executed). */
export class InvalidMessageError extends Error {
  override readonly name = "InvalidMessageError";
  /** Where in the message the first problem is (dot path), or null. */
  readonly path: string | null;
  constructor(message: string, path: string | null = null) {
    super(message);
    this.path = path;
  }
}

/** The request was cancelled through its AbortSignal (or the engine was unloaded) before it finished. */
export class AbortError extends Error {
  override readonly name = "AbortError";
}

/** A generation request arrived while no model is loaded (or after unload()). */
export class EngineNotLoadedError extends Error {
  override readonly name = "EngineNotLoadedError";
}

/** The Worker failed (a module that did not load, an uncaught exception) or the connection closed. */
export class WorkerError extends Error {
  override readonly name = "WorkerError";
}

/** An error of a class this side does not know; `name` is the original class name. */
export class RemoteError extends Error {
  override name = "RemoteError";
  /** The original error's own fields. */
  readonly fields: Record<string, JsonValue>;
  constructor(name: string, message: string, fields: Record<string, JsonValue> = {}) {
    super(message);
    this.name = name;
    this.fields = fields;
  }
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
