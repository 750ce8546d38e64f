"""Optional dependencies, each installed by an extra of steerfast (pyproject.toml), imported
where a feature needs them and failing with the `pip install` line that provides them."""

from __future__ import annotations

import importlib

from .errors import SteeringError


class MissingExtraError(SteeringError, ImportError):
    """A feature's optional dependency is not installed; the message names the extra."""


def require(module: str, extra: str, feature: str):
    """`module` imported, or MissingExtraError naming `extra` and the feature needing it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(
            f"{feature} needs {top}, which is not installed here ({exc}); "
            f"install it with: pip install 'steerfast[{extra}]'"
        ) from exc


def pyplot(feature: str):
    """matplotlib.pyplot on the file-only Agg backend (extra `plots`)."""
    matplotlib = require("matplotlib", "plots", feature)
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")
