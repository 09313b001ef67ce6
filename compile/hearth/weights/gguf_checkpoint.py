"""GGUF files (llama.cpp's format) as a checkpoint source.

A GGUF file holds the architecture, config, tokenizer (vocab, merges, special tokens, chat
template) and weights in one file. Hearth turns it into an ordinary Hugging Face folder once,
with transformers' own GGUF support (which reads the file through the `gguf` package), and caches
that folder by the file's SHA-256:

    <cache>/gguf/<sha16>/  config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja,
                           model.safetensors (weights dequantized to float32), gguf_source.json

From there the compile path is the same as for any HF checkpoint, and `hearth eval` and the QA
benchmark load the same folder with transformers as their fp32 reference. `gguf_source.json`
records what the package manifest says about its source: file name, SHA-256, file type and the
count of each tensor type. The carry-over quantization schemes read the file's own blocks again
(`read_blocks`), so they never see a rounded value.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from ..cache import atomic_dir, cache_root, sha256_file
from ..errors import HearthError
from .gguf_templates import CHATML, default_chat_template

GGUF_SOURCE = "gguf_source.json"
GGUF_MAGIC = b"GGUF"
# Hearth families that a GGUF can come in as: llama.cpp's `general.architecture` -> the HF
# model_type transformers gives it. Others are refused before any heavy work.
SUPPORTED_GGUF_ARCHITECTURES = {
    "llama": "llama",
    "mistral": "mistral",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma3": "gemma3_text",
}
# Used (with a warning) when the file carries no chat template and its family has no template of
# its own in gguf_templates (Gemma 3 has): ChatML. Documented in docs/gguf.md.
DEFAULT_CHAT_TEMPLATE = CHATML
# A trailing quantization tag in a GGUF file name ("Model.Q4_1", "model-q4_k_m"): not part of the id.
_QUANT_SUFFIX = re.compile(r"[.\-_](?:i?q\d[\w]*|f16|f32|bf16)$", re.IGNORECASE)


class GGUFError(HearthError, ValueError):
    """The GGUF file cannot be used; the message names the problem and what to do."""


def is_gguf(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".gguf"


def find_gguf(path: Path) -> Path | None:
    """The GGUF file `path` names: the file itself, or the only *.gguf in a folder that has no
    config.json (a folder with config.json is an HF checkpoint)."""
    if is_gguf(path):
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        files = sorted(p for p in path.glob("*.gguf") if p.is_file())
        if len(files) > 1:
            raise GGUFError(
                f"{path} holds {len(files)} GGUF files ({', '.join(p.name for p in files)}); pass the one to compile"
            )
        return files[0] if files else None
    return None


def model_id_from_file(path: Path) -> str:
    """ "SmolLM2-135M-Instruct.Q4_1.gguf" -> "SmolLM2-135M-Instruct"."""
    stem = path.stem
    return _QUANT_SUFFIX.sub("", stem) or stem


def _open_reader(path: Path) -> Any:
    from gguf import GGUFReader

    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise GGUFError(
            f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
            "pass a .gguf file from llama.cpp's converter"
        )
    try:
        return GGUFReader(str(path))
    except Exception as e:  # noqa: BLE001 - the reader raises ValueError, struct/memmap errors, IndexError
        raise GGUFError(
            f"{path.name} is not a readable GGUF file ({type(e).__name__}: {e}); "
            "it is truncated or corrupt: download it again"
        ) from e


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception:  # noqa: BLE001 - old gguf versions lack contents()
        return None


def describe(path: Path, reader: Any | None = None) -> dict[str, Any]:
    """What the manifest records about a GGUF source (cheap: metadata and tensor headers only)."""
    reader = reader or _open_reader(path)
    types = Counter(t.tensor_type.name for t in reader.tensors)
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "architecture": _field(reader, "general.architecture"),
        "name": _field(reader, "general.name"),
        "license": _field(reader, "general.license"),
        "file_type": _file_type_name(_field(reader, "general.file_type")),
        "tensor_types": dict(sorted(types.items())),
    }


def _file_type_name(value: Any) -> str | None:
    if value is None:
        return None
    try:
        from gguf import LlamaFileType

        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_")
    except (ImportError, ValueError):
        return str(value)


def _check_supported(path: Path, reader: Any) -> str:
    arch = _field(reader, "general.architecture")
    if arch not in SUPPORTED_GGUF_ARCHITECTURES:
        raise GGUFError(
            f"{path.name}: GGUF architecture {arch!r} is not supported. Supported GGUF architectures: "
            f"{', '.join(sorted(SUPPORTED_GGUF_ARCHITECTURES))} (Hearth's llama, qwen2, qwen3 and gemma3 families)."
        )
    from gguf import GGMLQuantizationType
    from gguf.quants import _type_traits  # noqa: PLC2701 - the table of types gguf can dequantize

    readable = {
        t
        for t in GGMLQuantizationType
        if t in (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16) or t in _type_traits
    }
    bad = sorted({t.tensor_type.name for t in reader.tensors if t.tensor_type not in readable})
    if bad:
        raise GGUFError(
            f"{path.name}: tensor type(s) {', '.join(bad)} cannot be dequantized by the gguf package. Supported: "
            f"{', '.join(sorted(t.name for t in readable))}. Convert the model with another quantization type."
        )
    return str(arch)


def converted_folder(path: Path) -> tuple[Path, dict[str, Any]]:
    """The cached HF folder for a GGUF file (converting it on first use) and its description."""
    path = path.resolve()
    reader = _open_reader(path)
    arch = _check_supported(path, reader)
    info = describe(path, reader)
    folder = cache_root() / "gguf" / info["sha256"][:16]
    if (folder / GGUF_SOURCE).is_file() and _template_is_current(folder, reader, arch):
        return folder, json.loads((folder / GGUF_SOURCE).read_text())
    with atomic_dir(folder) as tmp:
        _convert(path, tmp, info, reader, arch)
        (tmp / GGUF_SOURCE).write_text(json.dumps(info, indent=2) + "\n")
    return folder, info


def _fix_head_dim(config: Any, reader: Any, arch: str, name: str) -> None:
    """transformers' GGUF config mapping reads `attention.key_length` as head_dim for some
    architectures but not for qwen3, whose config then keeps Qwen3Config's default (128), right for
    the released Qwen3 models only by coincidence. The file's key_length is the truth wherever the
    config has a head_dim."""
    key_length = _field(reader, f"{arch}.attention.key_length")
    value_length = _field(reader, f"{arch}.attention.value_length")
    if key_length is None or not hasattr(config, "head_dim"):
        return
    if value_length is not None and int(value_length) != int(key_length):
        raise GGUFError(
            f"{name}: attention.key_length {key_length} != attention.value_length {value_length}; "
            "Hearth's families use one head_dim for keys and values"
        )
    if config.head_dim != int(key_length):
        config.head_dim = int(key_length)


def _template_is_current(folder: Path, reader: Any, arch: str) -> bool:
    """Whether a cached folder's chat template is the one a conversion would write now: folders
    converted before a family had its own default (Gemma 3 got ChatML) are converted again."""
    if _field(reader, "tokenizer.chat_template"):
        return True  # the file's own template, copied as it is
    cached = folder / "chat_template.jinja"
    return cached.is_file() and cached.read_text() == default_chat_template(arch)[0]


def _convert(path: Path, out: Path, info: dict[str, Any], reader: Any, arch: str) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(path.parent), path.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as e:  # noqa: BLE001 - transformers raises many types for a bad file
        raise GGUFError(f"{name}: transformers could not read its config or tokenizer ({type(e).__name__}: {e})") from e
    _fix_head_dim(config, reader, arch, name)
    # transformers marks GGUF-loaded configs as quantized; the folder holds plain float weights.
    for attr in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        if hasattr(config, attr):
            try:
                delattr(config, attr)
            except AttributeError:
                pass
    config.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.pop("quantization_config", None)
    cfg.pop("_model_name_or_path", None)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    if not getattr(tokenizer, "chat_template", None):
        template, what = default_chat_template(arch)
        warnings.warn(f"{name} has no chat template; using {what} (docs/gguf.md)", stacklevel=3)
        tokenizer.chat_template = template
    tokenizer.save_pretrained(out)
    if not (out / "tokenizer.json").is_file():
        raise GGUFError(f"{name}: transformers did not produce a tokenizer.json for {type(tokenizer).__name__}")

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    try:
        parsed = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=skeleton)
    except Exception as e:  # noqa: BLE001
        raise GGUFError(
            f"{name}: reading its tensors failed ({type(e).__name__}: {e}); the file is corrupt or truncated"
        ) from e
    tensors = {k: v.to(torch.float32).contiguous() for k, v in parsed["tensors"].items()}
    expected = {k for k, _ in skeleton.named_parameters()}
    if config.tie_word_embeddings:
        expected.discard("lm_head.weight")
    missing = sorted(expected - set(tensors))
    if missing:
        raise GGUFError(f"{name}: {len(missing)} weights the model needs are not in the file, e.g. {missing[:3]}")
    shapes = dict(skeleton.named_parameters())
    wrong = [
        f"{k} {tuple(v.shape)} (config: {tuple(shapes[k].shape)})"
        for k, v in tensors.items()
        if k in shapes and v.shape != shapes[k].shape
    ]
    if wrong:
        raise GGUFError(
            f"{name}: {len(wrong)} tensors do not have the shape its config implies, e.g. {wrong[0]}; "
            "the file's metadata and tensors disagree"
        )
    for k, v in tensors.items():
        if not torch.isfinite(v).all():
            raise GGUFError(f"{name}: tensor {k} holds NaN or Inf; the file is corrupt")
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt", "source": f"gguf:{info['sha256']}"})
    if info.get("license"):
        (out / "README.md").write_text(
            f"---\nlicense: {info['license']}\n---\nConverted by Hearth from {name} (sha256 {info['sha256']}).\n"
        )
