/** How the demo samples its answers (shared by the in-browser engine and the optional server route). */

/**
 * Sampling for RAG answers: SmolLM2's model card settings (temperature 0.2, top_p 0.9), which suit any small
 * instruct model answering from given text, and the SDK's loop guard (stop_on_repeat: the answer ends at the
 * first repeated sentence instead of looping to max_tokens, as SmolLM2-135M did ~30 times).
 */
export const ANSWER_SAMPLING = {
  temperature: 0.2,
  top_p: 0.9,
  stop_on_repeat: true,
  // The same documents and question give the same answer (and the end-to-end test a stable one).
  seed: 7,
} as const;
