"""Drive a compiled decoder natively (llvm/cuda) from Python, the way WebLLM drives it in JS.

Every forward pass is bracketed by the KV cache's bookkeeping:

    kv_state_begin_forward(kv, seq_ids, append_lengths)   # which sequences grow by how much
    embed -> prefill | decode | batch_*                   # attention reads/appends the pages
    kv_state_end_forward(kv)

and a sequence must be registered (`kv_state_add_sequence`) before its first token. A model
whose every layer attends over a window (Mistral v0.1) has each sequence's window enabled when
it is added (mlc-chat-config's `sliding_window_size`, as WebLLM does), so its cache slides and
keeps the window only (hearth.models.decoder.sequence_window). A model may create a PAIR of caches
(gemma3.py: its global layers' and its local layers'): the functions take the pair where they take
a cache, every bookkeeping call goes to each cache, and the window to the last one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm_ffi import Array, Shape

from .package import open_package

_add_sequence = tvm.get_global_func("vm.builtin.kv_state_add_sequence")
_remove_sequence = tvm.get_global_func("vm.builtin.kv_state_remove_sequence")
_clear = tvm.get_global_func("vm.builtin.kv_state_clear")
_begin_forward = tvm.get_global_func("vm.builtin.kv_state_begin_forward")
_end_forward = tvm.get_global_func("vm.builtin.kv_state_end_forward")
_enable_sliding_window = tvm.get_global_func("vm.builtin.attention_kv_cache_enable_sliding_window_for_seq")


class NativeDecoder:
    """A paged KV cache plus the model's functions, for one or a few sequences.

    `params` are the weights in packed order (numpy arrays or tvm tensors). Logits come back
    as float32 numpy rows of length vocab. Sequence 0 exists after construction/reset().
    """

    def __init__(
        self,
        executable_or_vm: tvm.runtime.Executable | relax.VirtualMachine,
        params: Sequence[np.ndarray | tvm.runtime.Tensor],
        device: tvm.runtime.Device,
        *,
        max_total_seq_len: int,
        prefill_chunk_size: int,
        max_batch_size: int = 1,
        page_size: int = 16,
        sliding_window: int = -1,
    ) -> None:
        if isinstance(executable_or_vm, relax.VirtualMachine):
            self.vm = executable_or_vm
        else:
            self.vm = relax.VirtualMachine(executable_or_vm, device)
        self.device = device
        self.params = [p if isinstance(p, tvm.runtime.Tensor) else tvm.runtime.tensor(p, device) for p in params]
        self.prefill_chunk_size = prefill_chunk_size
        self.max_batch_size = max_batch_size
        self.sliding_window = sliding_window
        self._embed = self.vm["embed"]
        self._prefill = self.vm["prefill"]
        self._decode = self.vm["decode"]
        # Each creation argument is a one-element shape tuple (MLC/WebLLM convention).
        self.kv = self.vm["create_paged_kv_cache"](
            Shape([max_batch_size]),
            Shape([max_total_seq_len]),
            Shape([prefill_chunk_size]),
            Shape([page_size]),
            Shape([0]),  # whole-model-window models turn it on themselves (decoder.sequence_window)
        )
        self.caches = list(self.kv) if isinstance(self.kv, Array) else [self.kv]
        self.reset()

    # -- sequences ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop every sequence and start sequence 0 afresh."""
        for kv in self.caches:
            _clear(kv)
        self.seq_lens: dict[int, int] = {}
        self.add_sequence(0)

    def add_sequence(self, seq_id: int) -> None:
        for kv in self.caches:
            _add_sequence(kv, seq_id)
        if self.sliding_window > 0:
            _enable_sliding_window(self.caches[-1], seq_id, self.sliding_window, 0)  # no attention sink
        self.seq_lens[seq_id] = 0

    def remove_sequence(self, seq_id: int) -> None:
        for kv in self.caches:
            _remove_sequence(kv, seq_id)
        del self.seq_lens[seq_id]

    # -- single sequence (what WebLLM does) --------------------------------------------------

    def prefill(self, token_ids: Sequence[int], seq_id: int = 0) -> np.ndarray:
        """Append `token_ids` to the sequence; logits for the token after the last one."""
        if len(token_ids) == 0:
            raise ValueError("prefill needs at least one token")
        logits = None
        # The compiled functions are planned for at most prefill_chunk_size tokens per call.
        for start in range(0, len(token_ids), self.prefill_chunk_size):
            chunk = list(token_ids[start : start + self.prefill_chunk_size])
            logits = self._forward(self._prefill, [seq_id], [chunk])
        return logits[0, -1]

    def decode(self, token_id: int, seq_id: int = 0) -> np.ndarray:
        """Append one token; logits for the next."""
        return self._forward(self._decode, [seq_id], [[token_id]])[0, -1]

    def greedy(self, prompt_ids: Sequence[int], max_new_tokens: int, seq_id: int = 0) -> list[int]:
        """Greedy continuation of `prompt_ids` (appended to the sequence's current state)."""
        out = [int(np.argmax(self.prefill(prompt_ids, seq_id)))]
        while len(out) < max_new_tokens:
            out.append(int(np.argmax(self.decode(out[-1], seq_id))))
        return out

    # -- several sequences per call -----------------------------------------------------------

    def batch_prefill(self, chunks: dict[int, Sequence[int]]) -> dict[int, np.ndarray]:
        """One forward over several sequences' new tokens (total <= prefill_chunk_size)."""
        seq_ids = list(chunks)
        lists = [list(chunks[s]) for s in seq_ids]
        # Index of each sequence's last token in the concatenated input.
        positions = np.cumsum([len(x) for x in lists]).astype("int32") - 1
        extra = [tvm.runtime.tensor(positions, self.device)]
        logits = self._forward(self.vm["batch_prefill"], seq_ids, lists, extra_inputs=extra)
        return {s: logits[0, i] for i, s in enumerate(seq_ids)}

    def batch_decode(self, tokens: dict[int, int]) -> dict[int, np.ndarray]:
        seq_ids = list(tokens)
        logits = self._forward(self.vm["batch_decode"], seq_ids, [[tokens[s]] for s in seq_ids], batch_as_rows=True)
        return {s: logits[i, 0] for i, s in enumerate(seq_ids)}

    # -- plumbing -----------------------------------------------------------------------------

    def _forward(self, fn, seq_ids, token_lists, extra_inputs=(), batch_as_rows=False) -> np.ndarray:
        if len(seq_ids) > self.max_batch_size:
            raise ValueError(f"{len(seq_ids)} sequences in one call, but the cache was sized for {self.max_batch_size}")
        flat = np.array([t for ids in token_lists for t in ids], dtype="int32")
        if len(flat) > self.prefill_chunk_size:
            raise ValueError(f"{len(flat)} tokens in one call exceed prefill_chunk_size {self.prefill_chunk_size}")
        for kv in self.caches:
            _begin_forward(kv, Shape(seq_ids), Shape([len(x) for x in token_lists]))
        embed = self._embed(tvm.runtime.tensor(flat, self.device), self.params)
        hidden = embed.shape[-1]
        # [n, hidden] -> [1, n, hidden] (or [batch, 1, hidden] for batch_decode): a view, no copy.
        shape = (len(flat), 1, hidden) if batch_as_rows else (1, len(flat), hidden)
        out = fn(embed._create_view(shape), *extra_inputs, self.kv, self.params)
        for kv in self.caches:
            _end_forward(kv)
        for s, ids in zip(seq_ids, token_lists):
            self.seq_lens[s] += len(ids)
        logits, _kv = out[0], out[1]
        return logits.numpy()


def load_decoder(
    package_dir: Path, target: str = "llvm", max_total_seq_len: int | None = None
) -> tuple[NativeDecoder, dict]:
    pkg = open_package(package_dir, target)
    config = pkg.config
    decoder = NativeDecoder(
        tvm.runtime.load_module(str(pkg.library)),
        [pkg.params[p["name"]] for p in config["params"]],
        pkg.device,
        max_total_seq_len=max_total_seq_len or config["context_window_size"],
        prefill_chunk_size=config["prefill_chunk_size"],
        sliding_window=int(config.get("sliding_window_size", -1)),
    )
    return decoder, config
