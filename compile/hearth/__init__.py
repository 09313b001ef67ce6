"""Hearth: compile Hugging Face LLMs and text encoders into WebGPU packages with Apache TVM."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hearth")
except PackageNotFoundError:  # running from a source tree without `pip install -e .`
    __version__ = "0.0.0+src"
