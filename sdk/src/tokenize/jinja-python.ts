/**
 * Python string semantics for @huggingface/jinja (0.5.11 and 0.5.13 alike), where chat templates need them.
 *
 * transformers renders templates with Python's Jinja2, where `s.strip(chars)`, `s.lstrip(chars)`,
 * `s.rstrip(chars)` and the `trim` filter are Python's `str.strip`. The JS interpreter ignores the
 * `chars` argument and trims JavaScript's whitespace set instead (`trimStart`), so Qwen3's
 * `content.lstrip('\n')` ate the leading space of an assistant reply ("\n ok" became "ok", measured in
 * tests/test_chat_templates_real.py), and `| trim` (Gemma 3) differed on U+0085, U+001C-U+001F
 * (Python whitespace) and U+FEFF (JS whitespace only).
 *
 * The interpreter exports neither its value classes nor its filter table, so the fix patches the two
 * places once per loaded module: the `builtins` getter of its string value class (reached through a
 * value that an Environment creates) and `Interpreter.prototype.applyFilter` for `trim`. Both patches
 * only change those four operations, and only towards Python's result.
 */
type JinjaModule = typeof import("@huggingface/jinja");

interface RuntimeValueLike {
  type: string;
  value: unknown;
}
type ValueCtor = new (value: unknown) => RuntimeValueLike;
type Builtin = (args: RuntimeValueLike[], scope: unknown) => RuntimeValueLike;

// str.isspace() in Python: the characters str.strip() removes when given no argument.
const PY_WHITESPACE: ReadonlySet<string> = new Set([
  ..."\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000",
  ...Array.from({ length: 11 }, (_, i) => String.fromCharCode(0x2000 + i)),
]);

/** Python's `str.strip` / `lstrip` / `rstrip`: `chars` null strips Python whitespace. */
export function pyStrip(text: string, chars: string | null, left: boolean, right: boolean): string {
  const set: ReadonlySet<string> = chars === null ? PY_WHITESPACE : new Set(chars);
  const points = Array.from(text); // code points, as Python indexes them
  let start = 0;
  let end = points.length;
  if (left) while (start < end && set.has(points[start] as string)) start++;
  if (right) while (end > start && set.has(points[end - 1] as string)) end--;
  return points.slice(start, end).join("");
}

const patched = new WeakSet<object>();

/** Patch `jinja` (the module object of @huggingface/jinja) once; later calls do nothing. */
export function usePythonStrings(jinja: JinjaModule): void {
  if (patched.has(jinja.Interpreter)) return;
  const env = new jinja.Environment();
  env.set("s", "");
  const sample = env.lookupVariable("s") as unknown as RuntimeValueLike;
  const proto = Object.getPrototypeOf(sample) as object;
  const getter = Object.getOwnPropertyDescriptor(proto, "builtins")?.get;
  const StringValue = sample.constructor as ValueCtor;
  if (sample.type !== "StringValue" || getter === undefined) {
    throw new Error("@huggingface/jinja changed: its string values have no builtins getter (see jinja-python.ts)");
  }
  const original = getter.call(sample) as Map<string, RuntimeValueLike>;
  const FunctionValue = original.get("strip")?.constructor as ValueCtor | undefined;
  if (FunctionValue === undefined) throw new Error("@huggingface/jinja changed: str.strip is missing (see jinja-python.ts)");

  const charsArg = (args: RuntimeValueLike[], name: string): string | null => {
    const a = args[0];
    if (a === undefined || a.type === "NullValue" || a.type === "UndefinedValue") return null;
    if (a.type !== "StringValue") throw new Error(`${name}() arg must be None or str`);
    return a.value as string;
  };
  const method =
    (text: string, name: string, left: boolean, right: boolean): Builtin =>
    (args) =>
      new StringValue(pyStrip(text, charsArg(args, name), left, right));
  const fixedMaps = new WeakSet<object>();
  Object.defineProperty(proto, "builtins", {
    configurable: true,
    get(this: RuntimeValueLike) {
      const map = getter.call(this) as Map<string, RuntimeValueLike>;
      if (!fixedMaps.has(map)) {
        const text = this.value as string;
        map.set("strip", new FunctionValue(method(text, "strip", true, true)));
        map.set("lstrip", new FunctionValue(method(text, "lstrip", true, false)));
        map.set("rstrip", new FunctionValue(method(text, "rstrip", false, true)));
        fixedMaps.add(map);
      }
      return map;
    },
  });

  const interp = jinja.Interpreter.prototype as unknown as Record<string, unknown>;
  const applyFilter = interp["applyFilter"];
  if (typeof applyFilter !== "function") throw new Error("@huggingface/jinja changed: Interpreter.applyFilter is missing (see jinja-python.ts)");
  interp["applyFilter"] = function (this: unknown, operand: RuntimeValueLike, filterNode: { type: string; value?: unknown }, environment: unknown) {
    if (filterNode.type === "Identifier" && filterNode.value === "trim" && operand.type === "StringValue") {
      return new StringValue(pyStrip(operand.value as string, null, true, true));
    }
    return applyFilter.call(this, operand, filterNode, environment);
  };
  patched.add(jinja.Interpreter);
}
