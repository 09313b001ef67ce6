/**
 * A Node worker_threads entry that serves the engine (the Node counterpart of src/service/worker.ts):
 * Dawn WebGPU and a file:// fetch are installed in the worker thread, then serveEngine() listens on
 * parentPort. Started by test/client-node-worker.test.ts with `execArgv: ["--import", "tsx"]`.
 */
import { parentPort } from "node:worker_threads";
import { serveEngine } from "../../src/service/serve.js";
import type { MessageEndpoint } from "../../src/service/protocol.js";
import { installNodeGPU } from "./node-gpu.js";
import { fileFetch } from "./file-fetch.js";

if (parentPort === null) throw new Error("engine-node-worker.ts must run in a worker thread");
const gpu = await installNodeGPU();
// parentPort is a Node MessagePort: an EventTarget with addEventListener / start / close.
serveEngine(parentPort as unknown as MessageEndpoint, { fetch: fileFetch, gpu, logger: () => {} });
