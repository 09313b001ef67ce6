// Fails (exit 1) when importing "@hearth/sdk/client" would load anything besides client/, errors/ and the
// protocol constant (the KV cache, GPU dispatch, the package loader, valibot...). Prints the sizes as one JSON line.
import { CLIENT_STATIC_ALLOWED, measureClientBundle } from "./client-bundle.mjs";

const m = await measureClientBundle();
const extra = m.staticModules.filter((p) => !CLIENT_STATIC_ALLOWED.test(p));
console.log(JSON.stringify({ staticBytes: m.staticBytes, staticModules: m.staticModules.length, totalBytes: m.totalBytes, unsplitBytes: m.unsplitBytes }));
if (extra.length > 0) {
  console.error(`check-client-bundle: the client statically loads modules outside client/, errors/, service/protocol.ts:\n  ${extra.join("\n  ")}`);
  console.error("Import them with `import type` (types) or move the value into errors/ or the protocol.");
  process.exit(1);
}
