"""Packaging: `kernels/` ships as `steerfast.kernels` and `csrc/` as package data.

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
