"""Helpers for remotes whose store is a folder on this machine's disk (SSH, WebDAV)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def stored_md5s(folder: Path) -> set[str]:
    """The objects a DVC 3 store folder holds: files/md5/ab/cdef... -> abcdef... (`.dir` kept)."""
    objects = folder / "files" / "md5"
    if not objects.is_dir():
        return set()
    return {
        f"{prefix.name}{entry.name}" for prefix in objects.iterdir() if prefix.is_dir() for entry in prefix.iterdir()
    }


def copy_folder(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


@contextmanager
def stopped(server) -> Iterator[None]:
    """The server down inside the block (connections refused: its port stays held), up again after."""
    server.stop()
    try:
        yield
    finally:
        server.start()
