"""The packages behind the optional native API (`hearth serve --native-api`): find them, load them
lazily, and run them natively through TVM (their `llvm` build) with the same tokenizer and chat
template the browser uses.

Everything here is synchronous and single-threaded per model: the router (native_api.py) calls it
from worker threads and holds the model's lock around every call, because a NativeDecoder's KV cache
is one mutable object.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..tasks import CHAT, EMBEDDING, get_task, package_task
from .catalog import scan_packages

if TYPE_CHECKING:  # TVM loads with the first model (tasks' open_native), not with the server
    from ..native.decoder import NativeDecoder
    from ..native.encoder import NativeEncoder

NATIVE_TARGET = "llvm"
# For a bare model id (no "/quant"): the variants that suit a CPU best first. f16 arithmetic is
# emulated on most CPUs, so f32 variants win when both exist.
QUANT_PREFERENCE = ["q4f32_1", "q0f32", "q4f16_1", "q0f16"]


class ModelNotFound(LookupError):
    """No package under dist/ answers to this model id (or it has no native build)."""


class PromptTooLong(ValueError):
    """The prompt (plus the requested completion) does not fit the model's context window."""


@dataclass
class PackageInfo:
    """A package with a native library, as listed by /v1/models (nothing loaded yet)."""

    id: str  # "<model_id>/<quantization>": the package folder relative to dist/
    model_id: str
    quantization: str
    task: str  # "chat" or "embedding"
    path: Path
    created: int


def find_native_packages(dist: Path) -> list[PackageInfo]:
    """Every good package under dist/ whose manifest lists a native (llvm) library (broken ones are
    skipped and logged by scan_packages; loading verifies every file)."""
    out: list[PackageInfo] = []
    for pkg in scan_packages(dist)[0]:
        doc = pkg.doc
        targets = doc.get("targets")
        if not isinstance(targets, dict) or NATIVE_TARGET not in targets:
            continue
        task = package_task(doc).name
        out.append(
            PackageInfo(
                id=pkg.rel,
                model_id=str(doc.get("model_id") or pkg.folder.parent.name),
                quantization=str(doc.get("quantization") or pkg.folder.name),
                task=task,
                path=pkg.folder,
                created=pkg.mtime,
            )
        )
    return out


# -- sampling ----------------------------------------------------------------------------------


class BadLogits(RuntimeError):
    """The model produced NaN logits: a broken package or a numerics bug, never the request's fault."""


@dataclass
class Sampling:
    """One request's sampling settings (OpenAI's semantics; the same as the SDK's sample/params.ts)."""

    temperature: float
    top_p: float
    rng: np.random.Generator
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass
class Sampled:
    token: int
    logprob: float | None = None  # under the model's raw distribution (before bias, penalties, temperature)
    top: list[tuple[int, float]] = field(default_factory=list)  # best first


def _log_softmax_at(raw: np.ndarray, ids: np.ndarray) -> np.ndarray:
    m = raw.max()
    return raw[ids] - (m + np.log(np.exp(raw - m).sum()))


class TokenConstraint(Protocol):
    """A grammar that masks each step's tokens (serve/structured.py's Constraint)."""

    def allowed(self) -> np.ndarray: ...  # bool per token id: which the grammar accepts next

    def accept(self, token: int) -> None: ...


def sample(
    logits: np.ndarray, s: Sampling, counts: Mapping[int, int] | None = None, allowed: np.ndarray | None = None
) -> Sampled:
    """logit_bias, then presence/frequency penalties over the tokens generated so far (OpenAI:
    logit -= frequency * count + presence), then the grammar's mask (`allowed`: tokens outside it get
    -inf, so every sampling mode stays inside the grammar), then greedy at temperature 0 (argmax,
    exactly what NativeDecoder.greedy does) or softmax with temperature, nucleus (top-p) filtering and
    one draw from the seeded generator. Logprobs describe the raw logits, as the SDK's (vLLM's default)."""
    raw = np.asarray(logits, dtype=np.float64).reshape(-1)
    if raw.size == 0 or np.isnan(raw).any():
        raise BadLogits("the model produced NaN logits; the package may be damaged (recompile it)")
    x = raw
    penalise = counts and (s.presence_penalty != 0.0 or s.frequency_penalty != 0.0)
    if s.logit_bias or penalise or allowed is not None:
        x = raw.copy()
        for tok, bias in s.logit_bias.items():
            x[tok] += bias
        if penalise:
            assert counts is not None
            ids = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            n = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            ok = ids < x.size
            x[ids[ok]] -= s.frequency_penalty * n[ok] + s.presence_penalty
        if allowed is not None:
            x[: allowed.size][~allowed] = -np.inf
            x[allowed.size :] = -np.inf  # padded logits past the tokenizer's vocabulary
    top = float(x.max())
    if s.temperature <= 0.0 or not np.isfinite(top):
        token = int(np.argmax(x))
    else:
        # Subtract the maximum before dividing: with a tiny temperature (1e-310) x / T overflows to
        # inf and inf - inf is NaN, while (x - max) / T is 0 for the best token and -inf elsewhere.
        with np.errstate(over="ignore"):
            z = (x - top) / s.temperature
        p = np.exp(z)
        p /= p.sum()
        if s.top_p < 1.0:
            order = np.argsort(-p, kind="stable")
            cum = np.cumsum(p[order])
            # Keep the smallest prefix whose mass reaches top_p (always at least the best token).
            keep = order[: int(np.searchsorted(cum, s.top_p) + 1)]
            q = np.zeros_like(p)
            q[keep] = p[keep]
            p = q / q.sum()
        token = int(s.rng.choice(len(p), p=p))
    out = Sampled(token)
    if s.logprobs:
        out.logprob = float(_log_softmax_at(raw, np.array([token]))[0])
        if s.top_logprobs > 0:
            k = min(s.top_logprobs, raw.size)
            best = np.argpartition(-raw, k - 1)[:k]
            best = best[np.lexsort((best, -raw[best]))]  # by logit, ties to the lower id
            out.top = [(int(t), float(lp)) for t, lp in zip(best, _log_softmax_at(raw, best))]
    return out


# -- text streaming ----------------------------------------------------------------------------


def _holdback(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of `text` that could still grow into a stop string."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if stop.startswith(text[-n:]):
                best = n
                break
    return best


@dataclass
class Generation:
    """One completion in progress: feed it tokens, take text deltas out.

    Text is re-decoded from all generated ids each step (a tokenizer's pieces are not always
    independent: byte fallback, SentencePiece spaces), and held back while it ends in an unfinished
    UTF-8 sequence or in what may be the start of a stop string, so a stop string never leaks out.
    """

    tokenizer: Any
    eos_ids: set[int]
    stops: list[str]
    max_tokens: int
    ids: list[int] = field(default_factory=list)
    emitted: str = ""
    finish_reason: str | None = None
    counts: Counter[int] = field(default_factory=Counter)  # generated tokens, for the penalties
    sampled: list[Sampled] = field(default_factory=list)  # one per token in `ids` (their logprobs)

    def push(self, token: int, sampled: Sampled | None = None) -> str:
        """Add one sampled token; the new text that is safe to show (may be empty)."""
        if token in self.eos_ids:
            self.finish_reason = "stop"
            return self._flush()
        self.ids.append(token)
        self.counts[token] += 1
        self.sampled.append(sampled or Sampled(token))
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for stop in self.stops:
            at = text.find(stop, max(0, len(self.emitted) - len(stop)))
            if at != -1:
                self.finish_reason = "stop"
                return self._take(text[:at])
        if len(self.ids) >= self.max_tokens:
            self.finish_reason = "length"
            return self._take(text)
        if text.endswith("\ufffd"):
            return ""  # an incomplete multi-byte character: wait for its other bytes
        return self._take(text[: len(text) - _holdback(text, self.stops)])

    def _flush(self) -> str:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        return self._take(text)

    def _take(self, text: str) -> str:
        if not text.startswith(self.emitted):
            return ""  # the decoded prefix changed (rare); never retract what was sent
        delta = text[len(self.emitted) :]
        self.emitted = text
        return delta


# -- models ------------------------------------------------------------------------------------


class ChatModel:
    """A chat package's native decoder, tokenizer and chat template."""

    def __init__(self, info: PackageInfo) -> None:
        # Lazy: transformers (and torch behind it) costs seconds, paid only when a chat model is first used.
        from transformers import AutoTokenizer

        self.info = info
        self.decoder: NativeDecoder
        self.decoder, self.config = CHAT.open_native(info.path, NATIVE_TARGET)  # verifies every file first
        self.context_window = int(self.config["context_window_size"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(info.path))
        # The browser renders the tokenizer's template, else mlc-chat-config's (ChatTemplate.fromSources).
        self.chat_template: str | None = getattr(self.tokenizer, "chat_template", None) or self.config.get(
            "chat_template"
        )
        eos = self.config.get("eos_token_id")
        self.eos_ids = {int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None}
        if self.tokenizer.eos_token_id is not None:
            self.eos_ids.add(int(self.tokenizer.eos_token_id))
        self.default_temperature = float(self.config.get("temperature", 1.0))
        self.default_top_p = float(self.config.get("top_p", 1.0))

    def prompt_ids(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        template_kwargs: dict[str, Any] | None = None,
    ) -> list[int]:
        """What the SDK's EngineCore prefills: the rendered template (with the generation prompt and,
        for templates that render them, the tools; `template_kwargs`: more template variables, e.g.
        Qwen3's enable_thinking), encoded without adding special tokens again."""
        if self.chat_template is None:
            raise ValueError(f"{self.info.id} has no chat template; it cannot take chat messages")
        text = self.tokenizer.apply_chat_template(
            messages,
            chat_template=self.chat_template,
            tools=tools,
            tokenize=False,
            add_generation_prompt=True,
            **(template_kwargs or {}),
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_fits(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """The completion budget; PromptTooLong when the prompt (plus max_tokens) exceeds the context."""
        room = self.context_window - prompt_tokens
        if room < 1:
            raise PromptTooLong(
                f"the prompt is {prompt_tokens} tokens; "
                f"{self.info.id} has a {self.context_window}-token context window "
                "(prompt plus completion); shorten the messages"
            )
        if max_tokens is not None and max_tokens > room:
            raise PromptTooLong(
                f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds {self.info.id}'s "
                f"{self.context_window}-token context window; ask for at most {room} tokens"
            )
        return max_tokens if max_tokens is not None else room

    @property
    def vocab_size(self) -> int:
        return int(self.config.get("vocab_size") or len(self.tokenizer))

    def start(
        self, prompt_ids: list[int], sampling: Sampling, gen: Generation, constraint: TokenConstraint | None = None
    ) -> str:
        """Reset the KV cache, prefill the prompt, sample the first token (inside `constraint`'s grammar)."""
        self.decoder.reset()
        return self._pick(self.decoder.prefill(prompt_ids), sampling, gen, constraint)

    def step(self, sampling: Sampling, gen: Generation, constraint: TokenConstraint | None = None) -> str:
        """Decode one more token (after start)."""
        return self._pick(self.decoder.decode(self._last), sampling, gen, constraint)

    def _pick(self, logits: np.ndarray, sampling: Sampling, gen: Generation, constraint: TokenConstraint | None) -> str:
        got = sample(logits, sampling, gen.counts, None if constraint is None else constraint.allowed())
        if constraint is not None:
            constraint.accept(got.token)
        self._last = got.token
        return gen.push(got.token, got)

    def token_logprob(self, token: int, logprob: float) -> dict[str, Any]:
        """OpenAI's {token, logprob, bytes} for one token (bytes null when the token holds part of a
        multi-byte character: its text decodes to U+FFFD and its bytes are not known here; the SDK's rule)."""
        text = self.tokenizer.decode([token], skip_special_tokens=False)
        return {"token": text, "logprob": logprob, "bytes": None if "\ufffd" in text else list(text.encode("utf-8"))}

    def logprobs_content(self, sampled: Sequence[Sampled]) -> list[dict[str, Any]]:
        """OpenAI's choice.logprobs.content for these tokens."""
        return [
            {
                **self.token_logprob(t.token, t.logprob or 0.0),
                "top_logprobs": [self.token_logprob(i, lp) for i, lp in t.top],
            }
            for t in sampled
        ]


class Cancelled(Exception):
    """The client went away; the work was stopped between two model calls."""


# Most token slots (batch x sequence length) one encoder call may take, so that a request whose
# client went away stops within about one call (b32_s256 measured 19 s on 2 busy cores, b8_s128 ~1 s),
# at the same throughput: bigger batches are not faster per input on a CPU.
ENCODER_CALL_SLOTS = 1024


@dataclass
class Tokenized:
    ids: list[list[int]]  # per text, truncated to the encoder's limit, [CLS]/[SEP] included
    truncated: list[tuple[int, int]]  # (index, tokens before truncation) of the texts that were cut


class EmbeddingModel:
    def __init__(self, info: PackageInfo) -> None:
        from tokenizers import Tokenizer

        self.info = info
        self.encoder: NativeEncoder = EMBEDDING.open_native(info.path, NATIVE_TARGET)  # verifies every file first
        self.max_tokens = int(self.encoder.max_seq_length)
        assert self.encoder.tokenizer is not None
        # A second copy without truncation, to tell how long a cut text was (reported, as the SDK does).
        self._untruncated = Tokenizer.from_str(self.encoder.tokenizer.to_str())
        self._untruncated.no_truncation()
        self._untruncated.no_padding()
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.embed_ids([[0, 0]], lambda: False).shape[1])
        return self._dimension

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        ids, truncated = self.encoder.tokenize(texts)
        full = [len(e.ids) for e in self._untruncated.encode_batch([texts[i] for i in truncated])] if truncated else []
        return Tokenized(ids, list(zip(truncated, full)))

    def embed_ids(self, ids: Sequence[Sequence[int]], cancelled: Callable[[], bool]) -> np.ndarray:
        """float32 [n, hidden] embeddings of tokenized texts, in order; Cancelled when `cancelled()`
        turns true between two encoder calls."""
        enc = self.encoder
        smallest = {b.seq: min(k.batch for k in enc.buckets if k.seq == b.seq) for b in enc.buckets}
        buckets = [b for b in enc.buckets if b.batch * b.seq <= ENCODER_CALL_SLOTS or b.batch == smallest[b.seq]]

        def stop_if_cancelled() -> None:
            if cancelled():
                raise Cancelled()

        return enc.embed_ids(ids, buckets=buckets, before_call=stop_if_cancelled)


# The served model of each task's packages (hearth.tasks).
SERVED: dict[str, Callable[[PackageInfo], ChatModel | EmbeddingModel]] = {
    CHAT.name: ChatModel,
    EMBEDDING.name: EmbeddingModel,
}


class ModelSlot:
    """One package, loaded on first use. `lock` serialises every use of the loaded model."""

    def __init__(self, info: PackageInfo) -> None:
        self.info = info
        self.lock = threading.Lock()
        self._model: ChatModel | EmbeddingModel | None = None

    def get(self) -> ChatModel | EmbeddingModel:
        """Load (under the lock's holder: callers hold `lock`) and return the model."""
        if self._model is None:
            self._model = SERVED[self.info.task](self.info)
        return self._model


class NativeModels:
    """The native packages under dist/, by id. The list is re-read per request (a package compiled
    while the server runs shows up); a loaded model stays loaded."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self._slots: dict[str, ModelSlot] = {}
        self._guard = threading.Lock()

    def list(self) -> list[PackageInfo]:
        return find_native_packages(self.dist)

    def resolve(self, model: str, task: str) -> ModelSlot:
        """The slot for `model` ("<model_id>/<quant>", or a bare model id: its best CPU variant)."""
        candidates = [p for p in self.list() if p.task == task]
        exact = [p for p in candidates if p.id == model]
        if not exact:
            same = [p for p in candidates if p.model_id == model]
            rank = {q: i for i, q in enumerate(QUANT_PREFERENCE)}
            exact = sorted(same, key=lambda p: rank.get(p.quantization, len(rank)))[:1]
        if not exact:
            others = [p for p in self.list() if p.id == model or p.model_id == model]
            if others:
                raise ModelNotFound(
                    f"model {model!r} is {get_task(others[0].task).noun}; this endpoint needs {get_task(task).noun}"
                )
            names = ", ".join(p.id for p in candidates) or "none"
            raise ModelNotFound(
                f"no {task} package {model!r} with a native ({NATIVE_TARGET}) build under {self.dist}/ "
                f"(available: {names}); compile it with --target {NATIVE_TARGET}"
            )
        info = exact[0]
        with self._guard:
            slot = self._slots.get(info.id)
            if slot is None:
                slot = self._slots[info.id] = ModelSlot(info)
            return slot
