/**
 * The minimal surface of tvmjs (`@mlc-ai/web-runtime` 0.27) that Hearth uses, typed without `any`.
 *
 * tvmjs ships its own .d.ts, but those leak `any` (PackedFunc, fetchTensorCache, ...). These
 * interfaces describe only what the engine calls; test/tvmjs-types.test.ts checks at compile time
 * that tvmjs's real classes still satisfy them, so a runtime upgrade that breaks them fails typecheck.
 */

export interface TvmDisposable {
  dispose(): void;
}

export interface TvmDevice {
  deviceType: number;
  deviceId: number;
  /** Wait for queued work on the device (WebGPU: queue submission + completion). */
  sync(): Promise<void>;
}

export interface TvmObject extends TvmDisposable {
  typeKey(): string;
}

/** Typed views tvmjs `Tensor.copyFrom` accepts. */
export type TvmCopySource = number[] | Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array | Uint8ClampedArray;

export interface TvmTensor extends TvmObject {
  readonly shape: number[];
  readonly dtype: string;
  readonly ndim: number;
  readonly device: TvmDevice;
  copyFrom(data: TvmTensor | TvmCopySource): this;
  copyFromRawBytes(data: Uint8Array): this;
  /** CPU tensors only. */
  toRawBytes(): Uint8Array;
  /** The data pointer: on WebGPU, the handle of the GPU buffer in tvmjs's buffer table. */
  getDataPtr(): number;
}

export interface TvmArray extends TvmObject {
  size(): number;
  get(index: number): unknown;
}

/** A callable TVM PackedFunc. Arguments are Tensors, numbers, strings, Scalars or TVM objects. */
export type TvmPackedFunc = ((...args: unknown[]) => unknown) & TvmDisposable;

export interface TvmModule extends TvmObject {
  getFunction(name: string, queryImports?: boolean): TvmPackedFunc;
}

export interface TvmVirtualMachine extends TvmDisposable {
  getFunction(name: string): TvmPackedFunc;
  getInternalModule(): TvmModule;
}

/** tvmjs's artifact cache contract (`ArtifactCacheTemplate`). */
export interface TvmArtifactCache {
  /** storetype "json" resolves to the parsed JSON value, "arraybuffer" to an ArrayBuffer. */
  fetchWithCache(url: string, storetype?: string, signal?: AbortSignal): Promise<unknown>;
  addToCache(url: string, storetype?: string, signal?: AbortSignal): Promise<void>;
  hasAllKeys(keys: string[]): Promise<boolean>;
  deleteInCache(url: string): Promise<void>;
}

export interface TvmFetchTensorCacheOptions {
  artifactCache?: TvmArtifactCache;
  cacheScope?: string;
  signal?: AbortSignal;
}

export interface TvmInitProgressReport {
  progress: number;
  timeElapsed: number;
  text: string;
}

export interface TvmInstance extends TvmDisposable {
  beginScope(): void;
  endScope(): void;
  withNewScope<T>(action: () => T): T;
  attachToCurrentScope<T extends TvmDisposable>(obj: T): T;
  detachFromCurrentScope<T extends TvmDisposable>(obj: T): T;
  systemLib(): TvmModule;
  listGlobalFuncNames(): string[];
  createVirtualMachine(dev: TvmDevice): TvmVirtualMachine;
  cpu(deviceId?: number): TvmDevice;
  webgpu(deviceId?: number): TvmDevice;
  empty(shape: number[] | number, dtype?: string, dev?: TvmDevice): TvmTensor;
  initWebGPU(device: GPUDevice): void;
  asyncLoadWebGPUPipelines(mod: TvmModule): Promise<void>;
  fetchTensorCache(tensorCacheUrl: string, device: TvmDevice, options?: TvmFetchTensorCacheOptions): Promise<unknown>;
  /** Returns a TVM Array of Tensors, in the order of `paramNames`. */
  getParamsFromCacheByName(paramNames: string[]): TvmObject;
  tensorCacheGet(name: string): TvmTensor | undefined;
  tensorCacheClear(): void;
  registerInitProgressCallback(cb: (report: TvmInitProgressReport) => void): void;
}

export interface TvmWasiProvider {
  imports: Record<string, unknown>;
  start: (inst: WebAssembly.Instance) => void;
}

/** The module object of `@mlc-ai/web-runtime` (its UMD exports). */
export interface TvmjsModule {
  instantiate(bufferSource: ArrayBuffer, importObject?: TvmWasiProvider | Record<string, unknown>, logger?: (msg: string) => void): Promise<TvmInstance>;
  createPolyfillWASI(): TvmWasiProvider;
}
