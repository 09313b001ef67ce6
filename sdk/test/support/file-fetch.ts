/**
 * A fetch for Node that also reads file:// URLs (Node's fetch refuses them), so cases and tensor caches
 * on disk load without an HTTP server. Other schemes go to the global fetch.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { FetchLike } from "../../src/runtime/tvm.js";

export const fileFetch: FetchLike = async (url, init) => {
  if (!url.startsWith("file:")) return fetch(url, init);
  init?.signal?.throwIfAborted();
  try {
    const data = await readFile(fileURLToPath(url));
    return new Response(data, { status: 200 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EISDIR") {
      return new Response(`not found: ${url}`, { status: 404, statusText: "Not Found" });
    }
    throw err;
  }
};
