"""Run compiled packages natively (llvm/cuda) from Python: for tests, eval, the QA benchmark and the
server's fallback API. Every file is verified against the manifest before it is read (package.py).

    decoder, config = load_decoder(Path("dist/m/q4f32_1"))       # NativeDecoder: prefill/decode/greedy
    encoder = NativeEncoder.from_package(Path("dist/e/q8f32_1"))  # embed(texts)
"""

from .decoder import NativeDecoder, load_decoder
from .encoder import EmbedResult, NativeEncoder, plan_batches
from .package import OpenedPackage, PackageTargetError, open_package

__all__ = [
    "EmbedResult",
    "NativeDecoder",
    "NativeEncoder",
    "OpenedPackage",
    "PackageTargetError",
    "load_decoder",
    "open_package",
    "plan_batches",
]
