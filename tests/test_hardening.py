"""Issue 19, items 7 and 8: the native loader reads only what the manifest lists and verifies, with
paths inside the package (as the SDK does); compile refuses bad configs and tokenizers before any
build work, rebuilds over a damaged package, and removes what killed compiles left behind.

Real packages: a small random Llama compiled for `llvm` (cached by build key in the package store).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hearth.build.input_checks import TokenizerCheckError, check_tokenizer
from hearth.build.package import compile_package
from hearth.cache import atomic_dir, clean_stale_temps
from hearth.cli import main as hearth_main
from hearth.eval.weights import TensorCacheReader
from hearth.models import UnsupportedConfigError, config_from_hf
from hearth.models.bert import BertConfig
from hearth.native import load_decoder
from hearth.native.encoder import NativeEncoder
from hearth.weights.manifest import MANIFEST, IntegrityError, verify_package, write_manifest
from test_compile import TINY_LLAMA as LLAMA  # the compile tests' tiny random Llama
from test_compile import _write_tokenizer  # the same tiny byte-level BPE tokenizer the compile tests use


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "harden-llama"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**LLAMA)).save_pretrained(folder)
    _write_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def package(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_package(str(checkpoint), "q4f32_1", ["llvm"], tmp_path_factory.mktemp("dist")).package_dir


def _copy(package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "m" / "q4f32_1"
    shutil.copytree(package, copy)
    return copy


def _edit_manifest(pkg: Path, edit) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((pkg / MANIFEST).read_text())
    edit(doc)
    (pkg / MANIFEST).write_text(json.dumps(doc))


def _flip(file: Path, at: int = 100) -> None:
    data = bytearray(file.read_bytes())
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


# -- item 7: every file the native loader reads is listed and verified, and inside the package ---


def test_native_loader_refuses_unlisted_tampered_shard(package: Path, tmp_path: Path) -> None:
    pkg = _copy(package, tmp_path)
    _edit_manifest(pkg, lambda d: d.update(files=[f for f in d["files"] if f["path"] != "params_shard_0.bin"]))
    _flip(pkg / "params_shard_0.bin")
    with pytest.raises(IntegrityError, match=r"params_shard_0\.bin.*not listed"):
        load_decoder(pkg)
    with pytest.raises(IntegrityError, match=r"params_shard_0\.bin.*not listed"):
        TensorCacheReader(pkg)  # hearth eval's weight-error reader
    with pytest.raises(IntegrityError, match=r"params_shard_0\.bin.*not listed"):
        NativeEncoder.from_package(pkg)  # the encoder loader shares the same checks


def test_native_loader_refuses_empty_file_list(package: Path, tmp_path: Path) -> None:
    pkg = _copy(package, tmp_path)
    _edit_manifest(pkg, lambda d: d.update(files=[]))
    with pytest.raises(IntegrityError, match="not listed"):
        load_decoder(pkg)


def test_native_loader_refuses_paths_outside_the_package(package: Path, tmp_path: Path) -> None:
    pkg = _copy(package, tmp_path)
    outside = tmp_path / "m" / "outside.bin"
    outside.write_bytes(b"x" * 16)
    entry = {"path": "../outside.bin", "bytes": 16, "sha256": verify_package(package)["files"][0]["sha256"]}
    _edit_manifest(pkg, lambda d: d["files"].append(entry))
    with pytest.raises(IntegrityError, match=r"\.\./outside\.bin.*not a relative path inside the package"):
        load_decoder(pkg)


def test_tensor_cache_shard_outside_the_package_is_refused(package: Path, tmp_path: Path) -> None:
    """A consistent manifest (rewritten after the edit) whose tensor-cache.json points a shard at
    ../: the shard is not (and cannot be) listed, so it is never read."""
    pkg = _copy(package, tmp_path)
    shutil.move(pkg / "params_shard_0.bin", tmp_path / "m" / "params_shard_0.bin")
    cache = json.loads((pkg / "tensor-cache.json").read_text())
    cache["records"][0]["dataPath"] = "../params_shard_0.bin"
    (pkg / "tensor-cache.json").write_text(json.dumps(cache))
    (pkg / MANIFEST).unlink()
    meta = {k: v for k, v in json.loads((package / MANIFEST).read_text()).items() if k != "files"}
    write_manifest(pkg, meta)
    verify_package(pkg)  # every listed file is intact: only the tensor cache's reference is bad
    with pytest.raises(IntegrityError, match=r"\.\./params_shard_0\.bin.*outside the package"):
        load_decoder(pkg)
    with pytest.raises(IntegrityError, match="outside the package"):
        TensorCacheReader(pkg)


def test_unlisted_extra_file_is_refused(package: Path, tmp_path: Path) -> None:
    """AutoTokenizer (the native server) reads whatever tokenizer files are in the folder."""
    pkg = _copy(package, tmp_path)
    (pkg / "chat_template.jinja").write_text("{{ 'injected' }}")
    with pytest.raises(IntegrityError, match=r"chat_template\.jinja.*not listed"):
        load_decoder(pkg)


@pytest.mark.parametrize(
    "bad",
    [
        '{"files": [',
        "[]",
        '{"files": 5}',
        '{"files": [{"path": 3}]}',
        '{"files": [{"path": "a", "bytes": 1, "sha256": "zz"}]}',
    ],
)
def test_malformed_manifest_is_an_integrity_error(package: Path, tmp_path: Path, bad: str) -> None:
    pkg = _copy(package, tmp_path)
    (pkg / MANIFEST).write_text(bad)
    with pytest.raises(IntegrityError, match=MANIFEST):
        load_decoder(pkg)


def test_eval_cli_fails_on_unlisted_tampered_shard(
    package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = _copy(package, tmp_path)
    _edit_manifest(pkg, lambda d: d.update(files=[f for f in d["files"] if f["path"] != "params_shard_0.bin"]))
    _flip(pkg / "params_shard_0.bin")
    assert hearth_main(["eval", str(pkg)]) != 0
    err = capsys.readouterr()
    assert "params_shard_0.bin" in err.out + err.err and "not listed" in err.out + err.err


# -- item 8: configs and tokenizers checked before any build work --------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_hidden_layers", -1),
        ("num_hidden_layers", 2.5),
        ("num_hidden_layers", "2"),
        ("num_hidden_layers", True),
        ("hidden_size", None),
        ("hidden_size", [64]),
        ("vocab_size", 0),
        ("intermediate_size", 1e400),
        ("num_key_value_heads", 3),
        ("rms_norm_eps", -1.0),
        ("rope_theta", "1e4"),
        ("tie_word_embeddings", "yes"),
    ],
)
def test_decoder_config_values_are_checked(field: str, value: object) -> None:
    cfg = {"model_type": "llama", **LLAMA, field: value}
    with pytest.raises(UnsupportedConfigError, match=field):
        config_from_hf(cfg)


def test_decoder_config_hidden_must_divide_into_heads() -> None:
    with pytest.raises(UnsupportedConfigError, match="hidden_size 66 is not a multiple of num_attention_heads 4"):
        config_from_hf({"model_type": "llama", **LLAMA, "hidden_size": 66})
    assert config_from_hf({"model_type": "llama", **LLAMA, "num_hidden_layers": 2.0})[1].num_hidden_layers == 2


BERT = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vocab_size": 100,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_hidden_layers", -1),
        ("num_hidden_layers", 2.5),
        ("hidden_size", None),
        ("hidden_size", [32]),
        ("max_position_embeddings", 1),
        ("layer_norm_eps", "small"),
        ("type_vocab_size", 0),
    ],
)
def test_bert_config_values_are_checked(field: str, value: object) -> None:
    from hearth.models.encoder import PoolingConfig

    with pytest.raises(UnsupportedConfigError, match=field):
        BertConfig.from_hf({**BERT, field: value}, pooling=PoolingConfig("mean", True, "default"))


def test_compile_refuses_bad_config_before_building(checkpoint: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad"
    shutil.copytree(checkpoint, src)
    cfg = json.loads((src / "config.json").read_text())
    for value in (-1, 2.5, None):
        (src / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": value}))
        with pytest.raises(UnsupportedConfigError, match="num_hidden_layers"):
            compile_package(str(src), "q4f32_1", ["llvm"], tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_check_tokenizer_refuses_invalid_files(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": 5}')
    with pytest.raises(TokenizerCheckError, match=r"tokenizer\.json does not load"):
        check_tokenizer(tmp_path)
    _write_tokenizer(tmp_path)
    check_tokenizer(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("[1")
    with pytest.raises(TokenizerCheckError, match=r"tokenizer_config\.json is not valid JSON"):
        check_tokenizer(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).unlink()
    with pytest.raises(TokenizerCheckError, match="has no tokenizer"):
        check_tokenizer(tmp_path)


def test_compile_refuses_invalid_tokenizer_before_building(checkpoint: Path, tmp_path: Path) -> None:
    src = tmp_path / "badtok"
    shutil.copytree(checkpoint, src)
    (src / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE", "vocab": 5}}')
    with pytest.raises(TokenizerCheckError, match=r"tokenizer\.json"):
        compile_package(str(src), "q4f32_1", ["llvm"], tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("bad", ['{"files": [', "{}", "[]", '{"files": 5}', '{"files": [{"path": 3}]}'])
def test_recompile_over_damaged_manifest_rebuilds(checkpoint: Path, package: Path, tmp_path: Path, bad: str) -> None:
    out = tmp_path / "dist"
    final = out / package.parent.name / "q4f32_1"
    shutil.copytree(package, final)
    (final / MANIFEST).write_text(bad)
    result = compile_package(str(checkpoint), "q4f32_1", ["llvm"], out)
    assert result.package_dir == final and verify_package(final)["build_key"] == verify_package(package)["build_key"]


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    pid = int(proc.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


def test_killed_compile_leftovers_are_removed_and_never_listed(checkpoint: Path, package: Path, tmp_path: Path) -> None:
    """A SIGKILLed compile leaves `.<quant>.tmp-<pid>-*` (here a real one: a child process killed
    inside atomic_dir); the next compile of that package removes it, a live owner's is kept."""
    out = tmp_path / "dist"
    final = out / package.parent.name / "q4f32_1"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import os, signal, sys, json\n"
                "from pathlib import Path\n"
                "from hearth.cache import atomic_dir\n"
                f"with atomic_dir(Path({str(final)!r})) as tmp:\n"
                "    (tmp / 'hearth-manifest.json').write_text(json.dumps({'files': [], 'model_id': 'ghost'}))\n"
                "    print(tmp.name, flush=True)\n"
                "    os.kill(os.getpid(), signal.SIGKILL)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    left = final.parent / child.stdout.readline().strip()
    assert child.wait() == -9 and (left / "hearth-manifest.json").is_file()
    live = final.parent / f".q4f32_1.tmp-{os.getpid()}-live"
    live.mkdir()

    from hearth.serve.catalog import package_listing

    assert package_listing(out) == []  # never listed, even holding a manifest
    compile_package(str(checkpoint), "q4f32_1", ["llvm"], out)
    assert not left.exists() and live.is_dir()
    assert [e["url"] for e in package_listing(out)] == [f"/models/{package.parent.name}/q4f32_1/"]


def test_clean_stale_temps_by_owner(tmp_path: Path) -> None:
    final = tmp_path / "artifact"
    dead = tmp_path / f".artifact.tmp-{_dead_pid()}-abc"
    mine = tmp_path / f".artifact.tmp-{os.getpid()}-def"
    other = tmp_path / f".other.tmp-{_dead_pid()}-ghi"
    for p in (dead, mine, other):
        p.mkdir()
    assert clean_stale_temps(final) == [dead]
    assert mine.is_dir() and other.is_dir()
    with atomic_dir(final) as tmp:
        assert tmp.name.startswith(f".artifact.tmp-{os.getpid()}-")
