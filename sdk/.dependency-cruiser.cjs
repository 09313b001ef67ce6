// The SDK's layer order, checked by `npm run check:deps` (dependency-cruiser). A module may import its own
// folder, the layers below it and errors/; never a layer above it, and nothing may form a cycle (type-only
// imports included: a type cycle is still a design cycle).
//
//   client -> service -> decoder | encoder -> load -> runtime -> sample -> tokenize -> grammar -> platform      errors: leaf
//   testing (the smoke runner) sits on runtime; rag stands alone; index.ts and engine.ts are the public facades.
//
// The main-thread client must stay small (sdk/README.md: importable alone): at run time it loads only client/,
// errors/ and the protocol constant; it may name the service's request/response types (type-only imports).
// dependency-cruiser parses TypeScript here with swc (its TypeScript parser needs typescript < 7; the SDK builds
// with 7), which reports `import type` as a plain import: the run-time half is scripts/check-client-bundle.mjs.

/** Upper to lower. decoder and encoder share a rank: neither imports the other. */
const LAYERS = [
  ["client"],
  ["service"],
  ["decoder", "encoder"],
  ["load"],
  ["runtime"],
  ["sample"],
  ["tokenize"],
  // Constrained decoding (xgrammar): takes a vocabulary as plain data, so it needs no other layer.
  ["grammar"],
  // Environment probes (is this Node?) that the loaders share; imports nothing.
  ["platform"],
];

const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i])));
const all = [...rank.keys()];

/** `from` may not import a layer above it, nor its own rank's other folders. */
const layerRules = all.map((name) => {
  const r = rank.get(name);
  const forbidden = all.filter((other) => other !== name && rank.get(other) <= r);
  return {
    name: `layer-${name}`,
    comment: `${name}/ may import only the layers below it (${LAYERS.slice(r + 1).flat().join(", ") || "none"}) and errors/`,
    severity: "error",
    from: { path: `^src/${name}/` },
    to: { path: `^src/(${forbidden.concat(["testing", "index\\.ts$", "engine\\.ts$"]).join("|")})` },
  };
});

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycles, at file level (type-only imports included).",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "errors-leaf",
      comment: "errors/ imports nothing else of the SDK, so every layer (and the client) can use it.",
      severity: "error",
      from: { path: "^src/errors/" },
      to: { path: "^src/(?!errors/)" },
    },
    ...layerRules,
    {
      name: "client-imports",
      comment:
        "The client imports client/, errors/, the protocol (service/protocol.ts) and, for their types only, the service's " +
        "request/response modules; the engine itself only through the inline transport's dynamic import of service/serve.ts. " +
        "That the type imports stay type-only (nothing of the engine in the client's static bundle) is checked by " +
        "scripts/check-client-bundle.mjs (npm run check:deps) and test/client-bundle.test.ts.",
      severity: "error",
      from: { path: "^src/client/" },
      to: {
        path: "^src/(?!client/|errors/|service/(protocol|openai|engine-core|embeddings)\\.ts$)",
        dependencyTypesNot: ["dynamic-import"],
      },
    },
    {
      name: "client-dynamic-import-is-serve",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/(?!client/|service/serve\\.ts$)", dependencyTypes: ["dynamic-import"] },
    },
    {
      name: "testing-on-runtime",
      comment: "The smoke runner runs compiled cases on the runtime alone.",
      severity: "error",
      from: { path: "^src/testing/" },
      to: { path: "^src/(?!testing/|runtime/|errors/)" },
    },
    {
      name: "rag-alone",
      comment: "rag/ depends on no other SDK folder (it takes an Embedder / ChatModel from the app).",
      severity: "error",
      from: { path: "^src/rag/" },
      to: { path: "^src/(?!rag/)" },
    },
    {
      name: "only-facades-use-rag",
      comment: "Besides the facades, only the encoder names rag's Embedder interface (which it implements), as a type.",
      severity: "error",
      from: { path: "^src/(?!rag/|index\\.ts$|engine\\.ts$)", pathNot: "^src/encoder/" },
      to: { path: "^src/rag/" },
    },
    {
      name: "encoder-uses-rag-types-only",
      comment: "The encoder implements rag's Embedder interface: it may import rag/types.ts (declarations only), nothing else of rag.",
      severity: "error",
      from: { path: "^src/encoder/" },
      to: { path: "^src/rag/", pathNot: "^src/rag/types\\.ts$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.d\\.ts$" },
    tsPreCompilationDeps: true,
    parser: "swc",
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
