/**
 * @hearth/sdk. Today this is the worker-side engine (WebGPU device, tvmjs runtime, tensor cache,
 * model-case runner, DecoderModel) and verified package loading; the main-thread client API comes later.
 */
export * from "./engine/index.js";
export * from "./load/index.js";
export * from "./tokenize/index.js";
export * from "./sample/index.js";
