// The app's citation when the model cites no source that holds its answer (src/workers/attribute.ts).
// Run: cd sdk && node --import tsx --test ../demo_rag/test/attribute.test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { attributeAnswer, contentTerms } from "../src/workers/attribute.ts";

// The QA set's marrhaven-optics.pdf, as the demo chunks it, plus a distractor.
const SOURCES = [
  "Marrhaven Optics: company profile\nHistory\nMarrhaven Optics was founded in 1936 by a group of former railway engineers. " +
    "Marrhaven Optics has its headquarters in the city of Elstmere.\n\nLeadership\nThe chief executive officer of Marrhaven Optics is\nLinnea Orskstrom.",
  "Operations\nThe best-selling product of Marrhaven Optics is the Kestrel Ashenmoor. Marrhaven\nOptics employs 8,568 people across its offices and workshops.",
  "Allotment rules\n\nEvery plot holder waters their own plot. Compost bins are shared, and the gate code changes each spring.",
];

test("contentTerms: words and numbers, no stop words, thousands separators dropped", () => {
  assert.deepEqual(
    [...contentTerms("The CEO is Linnea Orskstrom; it employs 8,568 people, 1.8 m.")],
    ["ceo", "linnea", "orskstrom", "employs", "8568", "people", "1.8"],
  );
});

test("attributeAnswer: the source holding the answer's own words (not the question's), or null", () => {
  const q = "Who is the CEO of Marrhaven Optics?";
  assert.equal(attributeAnswer("The CEO of Marrhaven Optics is Linnea Orskstrom.", q, SOURCES), 1);
  assert.equal(attributeAnswer("Marrhaven Optics employs 8,568 people.", "How many people does Marrhaven Optics employ?", SOURCES), 2);
  assert.equal(attributeAnswer("It sells the Kestrel Ashenmoor.", "What is the best-selling product?", [...SOURCES].reverse()), 2);
  // Words every source shares, or only the question's words: no evidence.
  assert.equal(attributeAnswer("Marrhaven Optics is the CEO.", q, SOURCES.slice(0, 2)), null);
  assert.equal(attributeAnswer("I do not know.", q, SOURCES), null);
  assert.equal(attributeAnswer("The CEO is Jane Doe.", q, SOURCES), null);
  assert.equal(attributeAnswer("Linnea Orskstrom.", q, []), null);
});
