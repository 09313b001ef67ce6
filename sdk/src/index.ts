/**
 * @hearth/sdk. Today this is the worker-side engine foundation (WebGPU device, tvmjs runtime,
 * tensor cache, model-case runner); the main-thread client API comes later.
 */
export * from "./engine/index.js";
