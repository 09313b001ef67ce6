"""The `_metadata` function MLC packages export: a no-argument VM function returning the model's
metadata JSON (quantization, context size, params in packed order...). WebLLM-style engines
call it at load time; Hearth's SDK reads the same data from mlc-chat-config.json."""

from __future__ import annotations

import json
from typing import Any

import tvm
from tvm import relax


def attach_metadata(mod: tvm.ir.IRModule, meta: dict[str, Any]) -> tvm.ir.IRModule:
    bb = relax.BlockBuilder(mod)
    with bb.function("_metadata", params=[]):
        bb.emit_func_output(tvm.ir.StringImm(json.dumps(meta)))
    return bb.get()
