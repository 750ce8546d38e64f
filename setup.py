"""Packaging: `kernels/` ships as `steerfast.kernels` and `csrc/` as package data.

`kernels/` has no `__init__.py` (a top-level regular package `kernels` would shadow Hugging
Face's `kernels`, which transformers imports, from any working directory on the repo root):
its modules are copied into `steerfast/kernels/` and imported by steerfast/ops/kernel_modules.py,
so setuptools' "package init file not found" notice for it is expected.

The C++ ops are compiled just in time (torch.utils.cpp_extension.load with ninja, cached),
so installing never builds against torch and never needs a second torch in an isolated
build environment.
"""

from setuptools import setup

setup(
    packages=[
        "steerfast",
        "steerfast.ops",
        "steerfast.runtime",
        "steerfast.serve",
        "steerfast.serve.routes",
        "steerfast.recipes",
        "steerfast.evaluate",
        "steerfast.bench",
        "steerfast.data",
        "steerfast.kernels",
        "steerfast.csrc",
        "steerfast.interop",
        "steerfast.cli",
        "steerfast.experiments",
        "steerfast.tune",
        "steerfast.vllm",
    ],
    package_dir={
        "steerfast": "steerfast",
        "steerfast.kernels": "kernels",
        "steerfast.csrc": "csrc",
    },
    package_data={
        "steerfast.data": [
            "*.jsonl",
            "examples/*.jsonl",
            "examples/*.csv",
            "examples/README.md",
            "tuned/*.safetensors",
            "tuned/README.md",
            "monitors/*.safetensors",
            "monitors/README.md",
        ],
        "steerfast.serve": ["playground/*.html", "playground/*.js", "playground/*.css"],
        "steerfast.csrc": ["*.cpp", "*.h"],
        "steerfast.bench": ["thresholds.json"],
    },
)
