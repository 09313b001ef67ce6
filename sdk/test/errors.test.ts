// Typed errors across the Worker boundary: every Error class the SDK exports is registered, so an error
// thrown in the engine comes back on the client as the same class with its fields. The round trip is
// serializeError -> structuredClone (what postMessage does) -> deserializeError. No GPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "../src/index.js";
import {
  ContextWindowExceededError,
  DeviceError,
  DeviceLostError,
  deserializeError,
  DownloadError,
  InputTooLongError,
  IntegrityError,
  InvalidRequestError,
  QuotaError,
  RemoteError,
  registeredErrorClass,
  serializeError,
  VariantSelectionError,
  type DeviceProblem,
  type MemoryEstimate,
} from "../src/index.js";

function roundTrip(err: Error): Error {
  return deserializeError(structuredClone(serializeError(err)));
}

/** Every class exported from @hearth/sdk that extends Error. */
function exportedErrorClasses(): [string, new (...args: never[]) => Error][] {
  const out: [string, new (...args: never[]) => Error][] = [];
  for (const [name, value] of Object.entries(sdk as Record<string, unknown>)) {
    if (typeof value === "function" && (value as { prototype?: unknown }).prototype instanceof Error)
      out.push([name, value as new (...args: never[]) => Error]);
  }
  return out;
}

test("every Error class @hearth/sdk exports is registered under its name (else it would come back as RemoteError)", () => {
  const classes = exportedErrorClasses();
  assert.ok(classes.length >= 30, `only ${classes.length} error classes found`);
  const missing = classes.filter(([name, cls]) => name !== "RemoteError" && registeredErrorClass(name) !== cls).map(([name]) => name);
  assert.deepEqual(missing, [], `not registered in errors/serialize.ts: ${missing.join(", ")}`);
  for (const [name, cls] of classes) {
    if (name === "RemoteError") continue;
    const back = deserializeError({ name, message: "m", fields: {}, stack: null, cause: null });
    assert.ok(back instanceof cls && back.name === name, name);
  }
  // An unknown class keeps its name and fields as a RemoteError.
  const unknown = deserializeError({ name: "SomeAppError", message: "boom", fields: { code: 7 }, stack: null, cause: null });
  assert.ok(unknown instanceof RemoteError && unknown.name === "SomeAppError" && (unknown as RemoteError).fields["code"] === 7);
});

test("errors come back as their class with their fields, message and cause", () => {
  const problems: DeviceProblem[] = [{ limit: "maxBufferSize", what: "weight w", needed: 300, available: 200, shortBy: 100 }];
  const estimate = { weightsBytes: 300, largestParam: { name: "w", bytes: 300, shape: [75], dtype: "float32" } } as unknown as MemoryEstimate;
  const cases: [Error, new (...args: never[]) => Error, Record<string, unknown>][] = [
    [
      new IntegrityError("params_shard_0.bin", "sha256", "aa", "bb", "params_shard_0.bin: SHA-256 mismatch"),
      IntegrityError,
      { file: "params_shard_0.bin", problem: "sha256", expected: "aa", actual: "bb" },
    ],
    [new QuotaError(5_000_000, 1_000), QuotaError, { needed: 5_000_000, available: 1_000 }],
    [new DeviceError(problems, estimate, "tiny"), DeviceError, { limit: "maxBufferSize", needed: 300, available: 200, shortBy: 100, problems }],
    [new DeviceLostError("unknown", "driver reset"), DeviceLostError, { reason: "unknown" }],
    [
      new DownloadError("a.bin", "https://h/a.bin", 503, "a.bin: HTTP 503", { cause: new TypeError("net") }),
      DownloadError,
      { file: "a.bin", url: "https://h/a.bin", status: 503 },
    ],
    [new VariantSelectionError("no variant fits", ["q4f16_1", "q4f32_1"]), VariantSelectionError, { variants: ["q4f16_1", "q4f32_1"] }],
    [new ContextWindowExceededError(10, 5000, 2048), ContextWindowExceededError, { seqLen: 10, appendLen: 5000, maxTotalSeqLen: 2048 }],
    [new InvalidRequestError("input: must be a string", "input", "invalid_type"), InvalidRequestError, { param: "input", code: "invalid_type" }],
    [new InputTooLongError({ indices: [1], tokens: [302], maxTokens: 256 }), InputTooLongError, { indices: [1], tokens: [302], maxTokens: 256 }],
  ];
  for (const [err, cls, fields] of cases) {
    const back = roundTrip(err);
    assert.ok(back instanceof cls, `${err.name} came back as ${back.constructor.name}`);
    assert.equal(back.name, err.name);
    assert.equal(back.message, err.message);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual((back as unknown as Record<string, unknown>)[k], v, `${err.name}.${k}`);
    assert.match(back.stack ?? "", /--- remote ---/);
  }
  const dl = roundTrip(cases[4]![0]);
  assert.ok(dl.cause instanceof TypeError && dl.cause.message === "net");
  assert.ok(roundTrip(new InputTooLongError({ indices: [0], tokens: [9], maxTokens: 8 })) instanceof RangeError);
});
