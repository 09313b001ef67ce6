/**
 * An {@link ArtifactStore} on the local file system, for Node (tests, CLIs, servers): one file per key
 * under a root folder (`<root>/hearth/v1/<model>/<quant>/<sha256>`). Writes go to a temporary file that
 * is renamed into place, so a crashed or concurrent writer never leaves a half-written entry under a key.
 *
 * Browser-safe module: `node:fs` is reached through `process.getBuiltinModule` at first use, so importing
 * this file in a browser costs nothing (constructing the store there throws).
 */
import type { ArtifactStore } from "./store.js";

interface Dirent {
  name: string;
  isDirectory(): boolean;
  isFile(): boolean;
}

interface FsPromises {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, opts: { force: boolean }): Promise<void>;
  mkdir(path: string, opts: { recursive: boolean }): Promise<unknown>;
  stat(path: string): Promise<{ isFile(): boolean }>;
  readdir(path: string, opts: { withFileTypes: true }): Promise<Dirent[]>;
}

interface NodePath {
  join(...parts: string[]): string;
  dirname(p: string): string;
  resolve(p: string): string;
  sep: string;
}

function nodeBuiltin<T>(id: string): T {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== "function") {
    throw new Error(`FileSystemArtifactStore needs Node >= 20.16 (process.getBuiltinModule("${id}"))`);
  }
  return proc.getBuiltinModule(id) as T;
}

function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

let tmpCounter = 0;
const TMP_SUFFIX = /\.tmp-\d+-\d+-[0-9a-z]*$/;

export class FileSystemArtifactStore implements ArtifactStore {
  readonly kind = "fs";
  readonly root: string;
  private readonly fs: FsPromises;
  private readonly path: NodePath;

  constructor(root: string) {
    this.fs = nodeBuiltin<FsPromises>("node:fs/promises");
    this.path = nodeBuiltin<NodePath>("node:path");
    this.root = this.path.resolve(root);
  }

  /** The file of `key`; refuses keys that would leave the root. */
  private file(key: string): string {
    const parts = key.split("/");
    if (key === "" || parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\") || p.includes("\0"))) {
      throw new Error(`FileSystemArtifactStore: invalid key ${JSON.stringify(key)}`);
    }
    return this.path.join(this.root, ...parts);
  }

  async get(key: string): Promise<ArrayBuffer | undefined> {
    try {
      const data = await this.fs.readFile(this.file(key));
      return data.buffer.byteLength === data.byteLength && data.byteOffset === 0 ? (data.buffer as ArrayBuffer) : data.slice().buffer;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async has(key: string): Promise<boolean> {
    try {
      return (await this.fs.stat(this.file(key))).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async put(key: string, bytes: ArrayBuffer): Promise<void> {
    const file = this.file(key);
    await this.fs.mkdir(this.path.dirname(file), { recursive: true });
    const proc = (globalThis as { process?: { pid?: number } }).process;
    const tmp = `${file}.tmp-${proc?.pid ?? 0}-${++tmpCounter}-${Math.random().toString(36).slice(2)}`;
    try {
      await this.fs.writeFile(tmp, new Uint8Array(bytes));
      await this.fs.rename(tmp, file);
    } catch (err) {
      await this.fs.rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.fs.rm(this.file(key), { force: true });
  }

  async keys(prefix: string): Promise<string[]> {
    // Walk from the deepest folder the prefix names completely.
    const cut = prefix.lastIndexOf("/");
    const dirKey = cut < 0 ? "" : prefix.slice(0, cut);
    const start = dirKey === "" ? this.root : this.file(dirKey);
    const out: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await this.fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const e of entries) {
        const key = keyPrefix === "" ? e.name : `${keyPrefix}/${e.name}`;
        if (e.isDirectory()) await walk(this.path.join(dir, e.name), key);
        else if (e.isFile() && !TMP_SUFFIX.test(e.name) && key.startsWith(prefix)) out.push(key);
      }
    };
    await walk(start, dirKey);
    return out.sort();
  }
}
