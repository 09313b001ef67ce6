"""Model definitions (hearth.models) against transformers, compiled and run for real.

Tiny random HF checkpoints (hidden 64, 2 layers, vocab 256, fp32) are saved with
save_pretrained, loaded through the architecture's param_map into our nn.Module, compiled
q0f32 for llvm, and driven through the exported functions with a paged KV cache
(hearth.native.decoder.NativeDecoder). The last-token logits after a 64-token prefill must match
transformers within 1e-3 and 32 greedy tokens must equal `generate(do_sample=False)`.
The shipping target, webgpu, is compiled (not run) for each family.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
import tvm
from safetensors.numpy import load_file

from hearth.build.pipeline import compile_module
from hearth.models import (
    UnsupportedArchitectureError,
    UnsupportedConfigError,
    config_from_hf,
    export_model,
    gather_params,
    get_architecture,
    metadata,
)
from hearth.native.decoder import NativeDecoder
from hearth.targets import get_target

LOGIT_TOL = 1e-3
PROMPT_LEN = 64
NEW_TOKENS = 32
VOCAB = 256

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # GQA: 2 query heads per kv head
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    # Wider than HF's 0.02 so logits are spread out: greedy choices are then decided by
    # margins far above float32 noise, and a real bug cannot hide behind near-ties.
    initializer_range=0.1,
    bos_token_id=None,
    eos_token_id=None,  # never stop early: we want exactly NEW_TOKENS tokens
    pad_token_id=0,
)


@dataclass(frozen=True)
class Case:
    hf_config_class: str
    overrides: dict = field(default_factory=dict)
    prefill_chunk_size: int = 64
    max_batch_size: int = 1


CASES = {
    "llama-gqa-untied": Case("LlamaConfig", dict(tie_word_embeddings=False)),
    "llama-gqa-tied": Case("LlamaConfig", dict(tie_word_embeddings=True)),
    # Llama 3.x RoPE scaling. original_max_position_embeddings is small so the scaled band
    # (wavelengths 16..64 tokens) and the divided band (> 64) both occur within the test.
    # A 48-token chunk makes the 64-token prompt take two prefill calls, so the second one
    # attends to pages the first wrote.
    "llama3-rope": Case(
        "LlamaConfig",
        dict(
            tie_word_embeddings=False,
            rope_theta=500000.0,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
        prefill_chunk_size=48,
    ),
    # Qwen2: bias on q/k/v, tied head (as Qwen2.5-0.5B/1.5B); compiled with room for two
    # sequences to exercise batch_prefill/batch_decode too.
    "qwen2-bias-tied": Case("Qwen2Config", dict(tie_word_embeddings=True, rope_theta=1000000.0), max_batch_size=2),
}


@dataclass
class Built:
    hf: torch.nn.Module
    config: object
    decoder: NativeDecoder
    compile_s: float


def _save_hf(name: str, root: Path) -> tuple[torch.nn.Module, Path]:
    case = CASES[name]
    cfg = getattr(transformers, case.hf_config_class)(**COMMON, **case.overrides)
    torch.manual_seed(0)
    hf = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    if "qwen2" in name:
        # HF initialises biases to zero; random ones make the qkv-bias path observable.
        with torch.no_grad():
            for layer in hf.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0.0, 0.5)
    out = root / name
    hf.save_pretrained(out)
    return hf.eval(), out


def _build(name: str, root: Path) -> Built:
    hf, path = _save_hf(name, root)
    case = CASES[name]
    arch, config = config_from_hf(
        json.loads((path / "config.json").read_text()),
        prefill_chunk_size=case.prefill_chunk_size,
        max_batch_size=case.max_batch_size,
    )
    model = arch.model_class(config, dtype="float32", target="llvm")
    mod, named_params = export_model(model)
    t0 = time.perf_counter()
    ex = compile_module(mod, get_target("llvm"))
    compile_s = time.perf_counter() - t0
    # Only what save_pretrained wrote: a tied checkpoint has no lm_head.weight.
    tensors = load_file(str(path / "model.safetensors"))
    params = gather_params(arch.param_map(config), named_params, tensors.__getitem__)
    decoder = NativeDecoder(
        ex,
        params,
        tvm.cpu(),
        max_total_seq_len=config.context_window_size,
        prefill_chunk_size=config.prefill_chunk_size,
        max_batch_size=config.max_batch_size,
    )
    return Built(hf, config, decoder, compile_s)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Built]:
    root = tmp_path_factory.mktemp("hf")
    cache: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in cache:
            cache[name] = _build(name, root)
        return cache[name]

    return get


def _prompt(seed: int, n: int = PROMPT_LEN) -> list[int]:
    return np.random.default_rng(seed).integers(1, VOCAB, n).tolist()


@pytest.mark.parametrize("name", list(CASES))
def test_prefill_and_greedy_match_transformers(name: str, built, record_property) -> None:
    b = built(name)
    ids = _prompt(1234)
    with torch.no_grad():
        gen = b.hf.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            output_logits=True,
            return_dict_in_generate=True,
        )
    ref_tokens = gen.sequences[0, len(ids) :].tolist()
    ref_logits = [step[0].numpy() for step in gen.logits]  # step i: logits that chose token i
    assert len(ref_tokens) == NEW_TOKENS

    b.decoder.reset()
    logits = b.decoder.prefill(ids)
    prefill_err = float(np.abs(logits - ref_logits[0]).max())
    tokens, step_errs = [int(np.argmax(logits))], []
    while len(tokens) < NEW_TOKENS:
        logits = b.decoder.decode(tokens[-1])
        step_errs.append(float(np.abs(logits - ref_logits[len(tokens)]).max()))
        tokens.append(int(np.argmax(logits)))

    record_property("prefill_max_abs_err", prefill_err)
    record_property("decode_max_abs_err", max(step_errs))
    record_property("llvm_compile_s", round(b.compile_s, 2))
    print(
        f"\n{name}: prefill max|d|={prefill_err:.3g} decode max|d|={max(step_errs):.3g} "
        f"greedy match={tokens == ref_tokens} llvm compile {b.compile_s:.1f}s"
    )
    assert prefill_err <= LOGIT_TOL, f"last-token logits after prefill differ by {prefill_err}"
    # The first mismatch, with HF's top-2 margin there, tells a bug from a genuine tie.
    for i, (ours, ref) in enumerate(zip(tokens, ref_tokens)):
        if ours != ref:
            top2 = np.sort(ref_logits[i])[-2:]
            pytest.fail(f"greedy token {i}: ours {ours}, transformers {ref} (HF top-2 margin {top2[1] - top2[0]:.3g})")
    assert max(step_errs) <= LOGIT_TOL, f"decode-step logits differ by up to {max(step_errs)}"


def test_reset_gives_identical_rerun(built) -> None:
    """reset() must fully forget the previous conversation."""
    dec = built("llama-gqa-untied").decoder
    ids = _prompt(7, 20)
    dec.reset()
    first = dec.greedy(ids, 8)
    dec.prefill(_prompt(8, 30))  # pollute the cache
    dec.reset()
    assert dec.greedy(ids, 8) == first


def test_batch_prefill_and_decode_match_single_sequence(built) -> None:
    """Two sequences in one call give the same tokens as each decoded alone by transformers."""
    b = built("qwen2-bias-tied")
    prompts = {0: _prompt(21, 20), 1: _prompt(22, 33)}
    refs = {}
    for s, ids in prompts.items():
        with torch.no_grad():
            seq = b.hf.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=8,
            )
        refs[s] = seq[0, len(ids) :].tolist()
    dec = b.decoder
    dec.reset()
    dec.add_sequence(1)
    logits = dec.batch_prefill(prompts)
    out = {s: [int(np.argmax(logits[s]))] for s in prompts}
    for _ in range(7):
        logits = dec.batch_decode({s: out[s][-1] for s in prompts})
        for s in prompts:
            out[s].append(int(np.argmax(logits[s])))
    assert out == refs
    assert dec.seq_lens == {0: 20 + 7, 1: 33 + 7}


def test_softmax_with_temperature(built) -> None:
    vm = built("qwen2-bias-tied").decoder.vm
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 1, VOCAB)).astype("float32") * 3
    logits[1, 0, [5, 9]] = logits[1].max() + 1.0  # an exact tie for the greedy row
    temperature = np.array([0.7, 0.0], dtype="float32")
    probs = vm["softmax_with_temperature"](tvm.runtime.tensor(logits), tvm.runtime.tensor(temperature)).numpy()
    z = logits[0, 0] / 0.7
    ref0 = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(probs[0, 0], ref0, atol=1e-6)
    ref1 = np.zeros(VOCAB, dtype="float32")
    ref1[[5, 9]] = 0.5  # temperature 0: the argmax as a one-hot, split between exact ties
    np.testing.assert_array_equal(probs[1, 0], ref1)


@pytest.mark.parametrize("name", ["llama-gqa-tied", "qwen2-bias-tied"])
def test_compiles_for_webgpu(name: str, tmp_path: Path, record_property) -> None:
    _, path = _save_hf(name, tmp_path)
    arch, config = config_from_hf(json.loads((path / "config.json").read_text()))
    model = arch.model_class(config, dtype="float16", target="webgpu")  # what ships: f16 weights
    mod, _ = export_model(model)
    t0 = time.perf_counter()
    ex = compile_module(mod, get_target("webgpu"))
    seconds = time.perf_counter() - t0
    record_property("webgpu_compile_s", round(seconds, 2))
    print(f"\n{name}: webgpu compile {seconds:.1f}s")
    text = ex.as_text()
    for fn in (
        "embed",
        "prefill",
        "decode",
        "batch_prefill",
        "batch_decode",
        "create_paged_kv_cache",
        "create_tir_paged_kv_cache",
        "softmax_with_temperature",
        "argsort_probs",
        "sample_with_top_p",
    ):  # the last two: WebLLM requires them (engine_funcs)
        assert f"@{fn}:" in text, f"{fn} missing from the webgpu executable"
    for fn in ("apply_logit_bias_inplace", "apply_penalty_inplace", "apply_bitmask_inplace"):  # TIR, for WebLLM
        assert ex.mod.implements_function(fn, query_imports=True), f"{fn} missing from the webgpu library"
    kinds = [m.kind for m in ex.mod.imports[0].imports] if ex.mod.imports else []
    assert "webgpu" in kinds, f"no WGSL module was generated: {kinds}"


def test_param_map_covers_named_parameters_and_metadata() -> None:
    for model_type, extra in [("llama", {}), ("llama", {"tie_word_embeddings": True}), ("qwen2", {})]:
        cfg = dict(
            model_type=model_type,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=VOCAB,
            max_position_embeddings=256,
            **extra,
        )
        arch, config = config_from_hf(cfg)
        model = arch.model_class(config, dtype="float16", target="llvm")
        names = [n for n, _ in model.named_parameters()]
        pmap = arch.param_map(config)
        assert sorted(pmap) == sorted(names)
        assert ("lm_head.weight" in pmap) == (not config.tie_word_embeddings)
        if model_type == "llama":
            assert "model.layers.1.self_attn.qkv_proj.weight" in pmap
            assert "model.layers.1.mlp.gate_up_proj.weight" in pmap
        if model_type == "qwen2":
            # MLC's (and WebLLM's) name for Qwen2's fused q|k|v; Llama keeps qkv_proj.
            assert "model.layers.1.self_attn.qkv_proj.weight" not in pmap
            assert pmap["model.layers.1.self_attn.c_attn.bias"].hf_names == tuple(
                f"model.layers.1.self_attn.{p}_proj.bias" for p in "qkv"
            )
        _, named = export_model(model)
        meta = metadata(config, "q0f16", named)
        assert meta["model_type"] == model_type and meta["kv_state_kind"] == "kv_cache"
        assert [p["name"] for p in meta["params"]] == names
        assert meta["sliding_window_size"] == -1 and meta["prefill_chunk_size"] == 256


def test_unknown_architecture_lists_supported_types() -> None:
    with pytest.raises(UnsupportedArchitectureError) as err:
        get_architecture("gpt2")
    msg = str(err.value)
    for t in ("llama", "mistral", "qwen2"):
        assert t in msg
    assert "gpt2" in msg


MISTRAL = dict(
    model_type="mistral",
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=VOCAB,
    head_dim=32,
    max_position_embeddings=32768,
    rope_theta=10000.0,
)


def test_mistral_sliding_window_is_kept() -> None:
    # Every layer slides (Mistral v0.1); parity with transformers: test_family_mistral.py.
    _, config = config_from_hf({**MISTRAL, "sliding_window": 4096})
    assert config.sliding_window == 4096 and config.prefill_chunk_size <= 4096
    # The window never slides within a context that fits in it: plain full attention.
    _, config = config_from_hf({**MISTRAL, "sliding_window": 4096}, context_window_size=4096)
    assert config.context_window_size == 4096 and config.sliding_window == 0
    # Mistral v0.2+ has no window at all; an explicit head_dim wins over hidden/heads.
    arch, config = config_from_hf({**MISTRAL, "sliding_window": None})
    assert arch.name == "llama" and config.head_dim == 32 and config.context_window_size == 32768


def test_config_parsing_variants() -> None:
    # transformers 4.x layout (most Hub checkpoints): top-level rope_theta, rope_scaling.
    legacy = dict(
        model_type="llama",
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        rope_scaling={
            "factor": 32.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
    )
    _, c = config_from_hf(legacy, context_window_size=4096)
    assert (c.head_dim, c.num_key_value_heads, c.rope_theta) == (64, 8, 500000.0)
    assert c.rope_scaling["rope_type"] == "llama3" and c.rope_scaling["factor"] == 32.0
    assert c.context_window_size == 4096 and c.prefill_chunk_size == 2048 and c.tie_word_embeddings
    # No num_key_value_heads: plain multi-head attention (Llama 2 7B, TinyLlama-style).
    _, c = config_from_hf({**legacy, "num_key_value_heads": None, "rope_scaling": None})
    assert c.num_key_value_heads == 32 and c.rope_scaling == {}
    with pytest.raises(UnsupportedConfigError, match="yarn"):
        config_from_hf({**legacy, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    # Qwen2.5 ships sliding_window but leaves it off.
    qwen = dict(
        model_type="qwen2",
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        max_position_embeddings=32768,
        sliding_window=32768,
        use_sliding_window=False,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
    )
    _, c = config_from_hf(qwen, prefill_chunk_size=1024)
    assert c.qkv_bias and not c.o_proj_bias and c.head_dim == 64 and c.prefill_chunk_size == 1024
    with pytest.raises(UnsupportedConfigError, match="sliding"):
        config_from_hf({**qwen, "use_sliding_window": True, "sliding_window": 4096})
