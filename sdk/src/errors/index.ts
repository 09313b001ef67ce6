/**
 * Every error class of the SDK, and their transport across a Worker boundary (serialize.ts). This folder
 * imports nothing else of the SDK, so the main-thread client can rebuild the engine's errors as their
 * classes without loading the engine. Each layer re-exports its own classes from here.
 */
export * from "./engine.js";
export * from "./load.js";
export * from "./runtime.js";
export * from "./text.js";
export * from "./model.js";
export * from "./serialize.js";
