"""Run a compiled encoder package natively (llvm/cuda) from Python: tokenize, bucket, embed.

    enc = NativeEncoder.from_package(Path("dist/all-MiniLM-L6-v2/q0f32"))
    result = enc.embed(["a sentence", "another one"])
    result.embeddings            # float32 [2, hidden], normalised if the model normalises
    result.truncated             # indices of texts cut to max_seq_length (never silent)

Tokenization uses the package's tokenizer.json with its own truncation/padding settings
turned off: texts are truncated to max_seq_length tokens ([CLS] and [SEP] included, like
sentence-transformers' `truncation=True, max_length=max_seq_length`), and padding is the
bucket's. An empty or whitespace-only text tokenizes to just [CLS] [SEP] and gets that
sequence's embedding (a fixed, finite vector), as in sentence-transformers.

Bucketing: texts are sorted by length; each call takes the longest remaining text's smallest
fitting sequence bucket S, and its batch size is chosen for the texts that NEED S (longer than
the next smaller bucket): the largest batch bucket of length S, or for a remainder the next
size up when they fill at least half of it, else the next size down. Rows the needy texts
leave free take the next (shorter) texts, which ride along at no cost; rows past the texts are
all padding and their outputs are dropped. Counting only the needy texts keeps one long text
from padding 31 short ones to its length (padded tokens are what software WebGPU pays for).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

from ..models.encoder import Bucket
from .package import PackageTargetError, open_package


@dataclass
class EmbedResult:
    embeddings: np.ndarray  # float32 [n, hidden]
    token_counts: list[int]  # tokens per text after truncation, specials included
    truncated: list[int]  # indices of the texts that were cut to max_seq_length
    calls: Counter = field(default_factory=Counter)  # bucket function name -> number of calls


def plan_batches(lengths: Sequence[int], buckets: Sequence[Bucket]) -> list[tuple[Bucket, list[int]]]:
    """Split texts (by token length) into (bucket, text indices) calls; see the module docstring."""
    seqs = sorted({k.seq for k in buckets})
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    calls: list[tuple[Bucket, list[int]]] = []
    pos = 0
    while pos < len(order):
        longest = lengths[order[pos]]
        fitting = [s for s in seqs if s >= longest]
        if not fitting:
            raise ValueError(f"a text has {longest} tokens, more than the largest bucket ({seqs[-1]}); truncate first")
        seq = fitting[0]
        shorter = max((s for s in seqs if s < seq), default=0)
        needy = sum(1 for i in order[pos:] if lengths[i] > shorter)  # contiguous: order is by length
        sizes = sorted(k.batch for k in buckets if k.seq == seq)
        batch = _pick_batch(sizes, needy)
        take = order[pos : pos + batch]
        calls.append((Bucket(batch, seq), take))
        pos += len(take)
    return calls


def _pick_batch(sizes: list[int], remaining: int) -> int:
    if remaining >= sizes[-1]:
        return sizes[-1]
    up = min(s for s in sizes if s >= remaining)
    down = [s for s in sizes if s <= remaining]
    if remaining * 2 >= up or not down:
        return up
    return down[-1]


class NativeEncoder:
    """A compiled encoder's bucket functions + weights on one device."""

    def __init__(
        self,
        executable_or_vm: tvm.runtime.Executable | relax.VirtualMachine,
        params: Sequence[np.ndarray | tvm.runtime.Tensor],
        device: tvm.runtime.Device,
        buckets: Sequence[Bucket],
        max_seq_length: int,
        tokenizer_file: Path | None = None,
    ) -> None:
        if isinstance(executable_or_vm, relax.VirtualMachine):
            self.vm = executable_or_vm
        else:
            self.vm = relax.VirtualMachine(executable_or_vm, device)
        self.device = device
        self.params = [p if isinstance(p, tvm.runtime.Tensor) else tvm.runtime.tensor(p, device) for p in params]
        self.buckets = sorted(buckets, key=lambda k: (k.seq, k.batch))
        self.max_seq_length = max_seq_length
        self.tokenizer = None
        if tokenizer_file is not None:
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
            self.tokenizer.no_padding()
            self.tokenizer.enable_truncation(max_length=max_seq_length)

    @classmethod
    def from_package(cls, package_dir: Path, target: str = "llvm") -> NativeEncoder:
        package_dir = Path(package_dir)
        try:
            # Verifies the manifest and every file, and that everything read here is listed.
            pkg = open_package(package_dir, target, reads=("tokenizer.json",))
        except PackageTargetError as e:
            raise ValueError(str(e)) from e
        config, params, dev = pkg.config, pkg.params, pkg.device
        if config.get("model_task") != "embedding":
            raise ValueError(f"{package_dir} is a {config.get('model_task')!r} package, not an embedding model")
        meta = config["embedding_metadata"]
        return cls(
            tvm.runtime.load_module(str(pkg.library)),
            [params[p["name"]] for p in config["params"]],
            dev,
            [Bucket(k["batch_size"], k["seq_len"]) for k in meta["buckets"]],
            meta["max_seq_length"],
            package_dir / "tokenizer.json",
        )

    # -- tokens -> embeddings ------------------------------------------------------------------

    def run_bucket(self, bucket: Bucket, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """One call of embed_b{B}_s{S}: int32 [B, S] arrays -> float32 [B, hidden]."""
        ids = tvm.runtime.tensor(np.ascontiguousarray(input_ids, dtype="int32"), self.device)
        mask = tvm.runtime.tensor(np.ascontiguousarray(attention_mask, dtype="int32"), self.device)
        return self.vm[bucket.name](ids, mask, self.params).numpy()

    def embed_ids(
        self,
        token_ids: Sequence[Sequence[int]],
        calls: Counter | None = None,
        *,
        buckets: Sequence[Bucket] | None = None,
        before_call: Callable[[], None] | None = None,
    ) -> np.ndarray:
        """Embeddings of already tokenized (and truncated) sequences, in input order.

        `buckets`: a subset of the package's buckets to plan with (the server caps a call's size so a
        cancel lands within one call); `before_call` runs before each encoder call and may raise to stop.
        """
        lengths = [len(t) for t in token_ids]
        if any(n > self.max_seq_length for n in lengths):
            raise ValueError(f"sequences longer than max_seq_length ({self.max_seq_length}) must be truncated first")
        out: np.ndarray | None = None
        for bucket, idx in plan_batches(lengths, self.buckets if buckets is None else buckets):
            if before_call is not None:
                before_call()
            ids = np.zeros((bucket.batch, bucket.seq), "int32")
            mask = np.zeros((bucket.batch, bucket.seq), "int32")
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = token_ids[i]
                mask[row, : lengths[i]] = 1
            emb = self.run_bucket(bucket, ids, mask)
            if out is None:
                out = np.empty((len(token_ids), emb.shape[1]), np.float32)
            out[idx] = emb[: len(idx)]
            if calls is not None:
                calls[bucket.name] += 1
        return out if out is not None else np.empty((0, 0), np.float32)

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """(token ids per text, indices of truncated texts)."""
        if self.tokenizer is None:
            raise ValueError("this encoder was built without a tokenizer; use embed_ids")
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        truncated = [i for i, e in enumerate(encodings) if e.overflowing]
        return ids, truncated

    def embed(self, texts: Sequence[str]) -> EmbedResult:
        ids, truncated = self.tokenize(texts)
        calls: Counter = Counter()
        emb = self.embed_ids(ids, calls)
        return EmbedResult(emb, [len(t) for t in ids], truncated, calls)
