/**
 * Turn the SDK's typed errors (which arrive from the workers as RemoteError or rebuilt instances, with
 * their `name` and fields intact) into something a person can act on.
 */
import { formatBytes } from "./ui/dom.ts";

export interface Explained {
  /** Stable kind for styling and tests. */
  kind: string;
  title: string;
  detail: string;
  /** What the user can do about it, if anything. */
  hint?: string;
}

/** A field of an error: own property, or RemoteError.fields. */
export function field(err: unknown, key: string): unknown {
  if (typeof err !== "object" || err === null) return undefined;
  const own = (err as Record<string, unknown>)[key];
  if (own !== undefined) return own;
  const fields = (err as { fields?: Record<string, unknown> }).fields;
  return fields?.[key];
}

export function errorName(err: unknown): string {
  return typeof err === "object" && err !== null && typeof (err as { name?: unknown }).name === "string" ? (err as { name: string }).name : "Error";
}

export function errorMessage(err: unknown): string {
  return err instanceof Error
    ? err.message
    : typeof err === "object" && err !== null && "message" in err
      ? String((err as { message: unknown }).message)
      : String(err);
}

/** Errors about loading a model package (engine or encoder). */
export function explainLoadError(err: unknown): Explained {
  const name = errorName(err);
  const message = errorMessage(err);
  switch (name) {
    case "IntegrityError":
      return {
        kind: "integrity",
        title: "A model file failed its integrity check",
        detail: message,
        hint: `The file ${String(field(err, "file") ?? field(err, "path") ?? "")} did not match the SHA-256 in the package manifest, so nothing from it was used and the bad copy was discarded. Reload to download it again; if it keeps failing, the package on the server is damaged (recompile it).`,
      };
    case "QuotaError": {
      const needed = field(err, "needed");
      const available = field(err, "available");
      const sizes =
        typeof available === "number" && typeof needed === "number"
          ? `The browser allows this site ${formatBytes(available)} more, and the model needs ${formatBytes(needed)}. `
          : "";
      return {
        kind: "quota",
        title: "Not enough storage for the model",
        detail: message,
        hint: `${sizes}Free disk space, clear this site's data in the browser settings (old models), or use a smaller model.`,
      };
    }
    case "WebGPUUnavailableError":
      return {
        kind: "webgpu",
        title: "WebGPU is not available",
        detail: message,
        hint: "Use a browser with WebGPU (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows) and make sure hardware acceleration is on, or compile the models with --target wasm-cpu so they can run on the CPU.",
      };
    case "WebGPUCapabilityError":
    case "DeviceError":
    case "VariantSelectionError":
      return { kind: "device", title: "This GPU cannot run the model", detail: message, hint: "Try a smaller model or a float32 variant (q4f32_1)." };
    case "DeviceLostError":
      return {
        kind: "device-lost",
        title: "The GPU was reset",
        detail: message,
        hint: "Reload the page; the model loads again from the local store, without downloading.",
      };
    case "PackageManifestError":
      return {
        kind: "network",
        title: "Cannot read the model package",
        detail: message,
        hint: "Is `hearth serve` running, and was the package compiled? See docs/demo.md.",
      };
    case "NoPackageError":
      return { kind: "no-package", title: "No model package to load", detail: message, hint: "Compile the demo packages with `make demo` (see docs/demo.md)." };
    case "AbortError":
      return { kind: "abort", title: "Cancelled", detail: message };
    case "QuestionTooLongError":
      // Its message is a whole sentence for a person (workers/question.ts).
      return { kind: "question-too-long", title: "Question too long", detail: message };
    case "PromptTooLongError":
      return { kind: "prompt-too-long", title: "Question too long", detail: message, hint: "Shorten the question." };
    default:
      return { kind: "error", title: name === "Error" ? "Something went wrong" : name, detail: message };
  }
}

/** Errors from ingesting one document (the RAG layer's typed errors carry a stable `code`). */
export function explainIngestError(err: unknown): Explained {
  const code = String(field(err, "code") ?? "");
  const message = errorMessage(err);
  switch (code) {
    case "unsupported-type":
      return { kind: code, title: "Unsupported file type", detail: message };
    case "empty-document":
      return { kind: code, title: "Empty document", detail: message };
    case "file-too-large":
      return { kind: code, title: "File too large", detail: message };
    case "pdf-invalid":
      return { kind: code, title: "Broken PDF", detail: message };
    case "pdf-encrypted":
      return { kind: code, title: "Encrypted PDF", detail: message, hint: "Remove the password protection and try again." };
    case "pdf-no-text-layer":
      return { kind: code, title: "PDF without text", detail: message, hint: "This looks like a scanned PDF; run OCR on it first." };
    case "pdf-load":
      return { kind: code, title: "Could not load the PDF reader", detail: message };
    case "text-decode":
      return { kind: code, title: "Unreadable text", detail: message, hint: "Save the file as UTF-8." };
    default: {
      const name = errorName(err);
      if (name === "QuotaExceededError") return { kind: "quota", title: "Storage is full", detail: message };
      return { kind: code || "error", title: name, detail: message };
    }
  }
}
