"""Finding and importing the Triton kernels (the repository's top-level `kernels/` folder).

`kernels/` has no `__init__.py` on purpose. A regular package named `kernels` at the repo
root would shadow any other distribution's `kernels` (Hugging Face's hub kernels, which
transformers >= 5.25 depends on and imports) whenever the root is on `sys.path`: `python -m`,
pytest, any script run from the root. A folder of plain modules is at most a namespace
portion, which Python ranks below every regular package, so it never shadows one.

Installed, setup.py ships the folder's modules as `steerfast/kernels/`; in a checkout (or an
editable install) they are read from the folder. Either way they are imported here as
submodules of a package this module makes (`steerfast.kernels` by default), never as
top-level `kernels`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

MODULES = ("steer_rows", "steer_linear", "steer_ablate")
EXPORTS = {
    "steer_rows": ("steer_rows_", "launch_steer_rows"),
    "steer_linear": ("steer_linear", "launch_steer_linear"),
    "steer_ablate": ("steer_ablate_", "launch_steer_ablate"),
}
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # steerfast/


def kernels_dir() -> Path:
    """The folder holding the kernel modules: `steerfast/kernels` when installed from a
    wheel, else the checkout's top-level `kernels/`."""
    for candidate in (_PACKAGE_ROOT / "kernels", _PACKAGE_ROOT.parent / "kernels"):
        if (candidate / "steer_rows.py").is_file():
            return candidate
    raise ImportError(
        f"steerfast's Triton kernels are missing (looked in {_PACKAGE_ROOT / 'kernels'} "
        f"and {_PACKAGE_ROOT.parent / 'kernels'})"
    )


def load(package: str = "steerfast.kernels") -> SimpleNamespace:
    """The kernel functions (steer_rows_, steer_linear, steer_ablate_ and their launch_*),
    plus `modules` (name -> module), imported as submodules of `package`.

    A second call with the same `package` reuses the modules. A failed import (no triton)
    leaves nothing behind in sys.modules.
    """
    added = []
    if package not in sys.modules:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(kernels_dir())]
        sys.modules[package] = importlib.util.module_from_spec(spec)
        added.append(package)
    names = [f"{package}.{m}" for m in MODULES]
    added += [n for n in names if n not in sys.modules]
    try:
        modules = {m: importlib.import_module(n) for m, n in zip(MODULES, names)}
    except BaseException:
        for name in added:
            sys.modules.pop(name, None)
        raise
    functions = {f: getattr(modules[m], f) for m, fs in EXPORTS.items() for f in fs}
    return SimpleNamespace(package=package, modules=modules, **functions)
