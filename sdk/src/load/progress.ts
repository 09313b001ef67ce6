/**
 * Load progress, reported through loadPackage's `onProgress` callback. Phases, in order:
 *
 *   manifest        hearth-manifest.json fetched (always revalidated with the server)
 *   download*       files missing from the store arrive (bytes done/total, file i/n); each one is
 *                   hashed as soon as it is complete, so a `verify` event follows each finished file
 *   verify*         one per package file the load uses (downloaded now, or read back from the store)
 *   shader-compile* WebGPU pipelines being created (tvmjs asyncLoadWebGPUPipelines); not for wasm-cpu
 *   gpu-upload*     weights copied onto the device, shard by shard (device "cpu" for wasm-cpu)
 *   ready           the package is loaded
 *
 * `download` and `verify` events interleave (downloads run in parallel). Byte counters only grow.
 */

export interface ManifestProgress {
  phase: "manifest";
  url: string;
  /** True when the network failed and the last good manifest from the store was used. */
  offline: boolean;
}

export interface DownloadProgress {
  phase: "download";
  /** The file this event is about (package-relative path). */
  file: string;
  /** 0-based index of `file` among the files this load downloads. */
  fileIndex: number;
  /** Files this load downloads (those missing from the store). */
  fileCount: number;
  /** Files completed (downloaded and verified) so far. */
  filesDone: number;
  /** Bytes received so far over all files of this download. */
  loadedBytes: number;
  /** Bytes to download in all (manifest sizes of the missing files). */
  totalBytes: number;
  fileLoadedBytes: number;
  fileTotalBytes: number;
  /** Files / bytes the store already had (not downloaded). */
  cachedFiles: number;
  cachedBytes: number;
}

export interface VerifyProgress {
  phase: "verify";
  file: string;
  /** Where the verified bytes came from. */
  source: "network" | "cache";
  /** Files verified so far, including this one, and the number the load uses. */
  filesDone: number;
  fileCount: number;
  verifiedBytes: number;
  totalBytes: number;
}

export interface ShaderCompileProgress {
  phase: "shader-compile";
  /** 0..1. */
  progress: number;
  /** Pipelines compiled / in all, when tvmjs reports them (else null). */
  done: number | null;
  total: number | null;
}

export interface GpuUploadProgress {
  phase: "gpu-upload";
  /** "webgpu", or "cpu" for a wasm-cpu package (the weights go to wasm memory). */
  device: "webgpu" | "cpu";
  /** Shards uploaded so far / in all. */
  shardsDone: number;
  shardCount: number;
  loadedBytes: number;
  totalBytes: number;
}

export interface ReadyProgress {
  phase: "ready";
  totalMs: number;
  /** Bytes downloaded by this load (0 when everything came from the store). */
  downloadedBytes: number;
  /** Bytes read back from the store. */
  cachedBytes: number;
}

export type LoadProgress = ManifestProgress | DownloadProgress | VerifyProgress | ShaderCompileProgress | GpuUploadProgress | ReadyProgress;

export type LoadPhase = LoadProgress["phase"];

export type ProgressCallback = (event: LoadProgress) => void;

/** Call `cb` and never let it break the load (a throwing callback is reported once, to `warn`). */
export function safeProgress(cb: ProgressCallback | undefined, warn: (msg: string) => void): ProgressCallback {
  if (cb === undefined) return () => {};
  let warned = false;
  return (e) => {
    try {
      cb(e);
    } catch (err) {
      if (!warned) {
        warned = true;
        warn(`onProgress threw (ignored): ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
}
