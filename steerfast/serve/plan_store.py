"""`--plan-dir`: uploaded plans as files that survive restarts and `kill -9`.

An upload streams into `.<name>.<random>.partial` in the directory (never under the final
name), is fsynced, validated and loaded into the engine, then renamed to `<name>.safetensors`
and the directory fsynced; only then does the server answer 201. A rename is atomic, so after
a crash at any moment the directory holds complete plan files only (partials are removed at
the next start). A delete unlinks the file and fsyncs the directory before answering.
Without a directory the same code streams into a temporary directory that is discarded.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

SUFFIX = ".safetensors"
PARTIAL = ".partial"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PlanStore:
    """Plan files in one directory: `<name>.safetensors` each, written atomically."""

    def __init__(self, directory: str | os.PathLike | None):
        self.persistent = directory is not None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="steerfast-uploads-")
            directory = self._tmp.name
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.dir / f"{name}{SUFFIX}"

    def saved(self) -> dict[str, Path]:
        """name -> file of every complete plan (partial uploads are never listed)."""
        out = {}
        for entry in sorted(os.listdir(self.dir)):
            p = self.dir / entry
            if entry.endswith(SUFFIX) and not entry.startswith(".") and p.is_file():
                out[entry[: -len(SUFFIX)]] = p
        return out

    def clear_partials(self) -> list[str]:
        """Remove the partial uploads a crash left behind (at start, before serving)."""
        gone = []
        for entry in sorted(os.listdir(self.dir)):
            if entry.endswith(PARTIAL) and (self.dir / entry).is_file():
                (self.dir / entry).unlink()
                gone.append(entry)
        return gone

    def partial(self, name: str) -> Path:
        return self.dir / f".{name}.{secrets.token_hex(8)}{PARTIAL}"

    def open_partial(self, name: str):
        """(path, binary file) of a new partial upload for `name`."""
        path = self.partial(name)
        return path, open(path, "xb")

    def commit(self, partial: Path, name: str) -> Path:
        """Make a written (and closed) partial the plan file `name`: fsync, rename, fsync dir."""
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        final = self.path(name)
        if self.persistent:
            os.replace(partial, final)
            _fsync_dir(self.dir)
        else:
            partial.unlink()
        return final

    def discard(self, partial: Path) -> None:
        partial.unlink(missing_ok=True)

    def delete(self, name: str) -> bool:
        """Remove `name`'s file (durably); False if there was none."""
        p = self.path(name)
        try:
            p.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.dir)
        return True


__all__ = ["PlanStore"]
