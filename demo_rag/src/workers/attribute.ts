/**
 * When the model cites no source, the app finds the one the answer came from.
 *
 * Measured (demo_rag/tools/prompt_experiment.py, docs/demo.md): SmolLM2-135M-Instruct states the right fact
 * in most answers but does not attribute it: with the best prompt its citation numbers are right 0 of 16
 * times, and forced to write a number after its answer it picks [2] whatever the sources (1 of 16 right).
 * The fact itself comes from a source, so its words do too: the answer's content words that are not in the
 * question (names, numbers, places) are looked up in each source, weighted by how rare they are among the
 * sources; the best-scoring source is the citation. The app says it matched it (AskOutcome.citedBy), so a
 * reader knows which citations the model made and which the app did.
 */

const STOP = new Set(
  (
    "the a an and or of in on at to for from by with as is are was were be been it its this that these those which who whom whose what when where " +
    "how why there their they them he she his her has have had do does did not no yes than then so such also into over under about after before " +
    "one answer source sources question company"
  ).split(" "),
);

/** Lower-case words and numbers ("8,568" -> "8568", "1.8" kept); stop words and 1-2 letter words dropped. */
export function contentTerms(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+(?:[.,'’][\p{L}\p{N}]+)*/gu)) {
    const w = m[0].replace(/(?<=\d),(?=\d{3})/gu, "").replace(/['’]s$/u, "");
    if (STOP.has(w) || (w.length < 3 && !/\d/u.test(w))) continue;
    out.add(w);
  }
  return out;
}

/**
 * The 1-based number of the source the answer most likely came from, or null when no source shares a
 * distinctive term with it (a refusal, or an answer made up without the sources).
 */
export function attributeAnswer(answer: string, question: string, sources: readonly string[]): number | null {
  const asked = contentTerms(question);
  const terms = [...contentTerms(answer)].filter((t) => !asked.has(t));
  if (terms.length === 0 || sources.length === 0) return null;
  const bags = sources.map((s) => contentTerms(s));
  let best: { n: number; score: number } | null = null;
  bags.forEach((bag, i) => {
    let score = 0;
    for (const t of terms) {
      if (!bag.has(t)) continue;
      const df = bags.filter((b) => b.has(t)).length;
      // A term every source has says nothing about which one it came from.
      score += df === bags.length && bags.length > 1 ? 0 : Math.log(1 + bags.length / df);
    }
    // Ties go to the better-ranked source (lower n).
    if (score > 0 && (best === null || score > best.score)) best = { n: i + 1, score };
  });
  return best === null ? null : (best as { n: number; score: number }).n;
}
