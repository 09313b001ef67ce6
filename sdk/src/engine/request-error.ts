/**
 * {@link InvalidRequestError} on its own, without errors.ts's imports: the package loader (../load) throws
 * it for bad options, and errors.ts imports the loader's error classes, so defining it there would make
 * a cycle.
 */

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
