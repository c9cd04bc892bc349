"""A full disk on the runner, recognised wherever it surfaces: an OSError of ours, a `dvc` or `git`
command's output, a stage's, or MLflow's sqlite store. It ends in one line that names the path
and its free space (exit 5), never in an internal error."""

from __future__ import annotations

import errno
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .adapters.auth import exception_chain
from .errors import RunnerResourceExhausted

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_MARKERS = (
    "no space left on device",
    "disk quota exceeded",
    "database or disk is full",
    "[errno 28]",
    "[errno 122]",
)
_QUOTED_PATH = re.compile(r"""['"](/[^'"\n]+)['"]""")


def _text_of(error: BaseException) -> str:
    output = getattr(error, "output", None)
    return f"{output}\n{error}" if isinstance(output, str) else str(error)


def default_candidates(repo: Path | None = None) -> list[Path]:
    """Where a command of ours writes: the workspace, its DVC cache and the temporary folder."""
    from .adapters.dvc import cache_dir

    root = (repo or Path.cwd()).resolve()
    return [root, cache_dir(root), Path(tempfile.gettempdir())]


def free_bytes(path: Path) -> int | None:
    """Free space of the file system holding `path` (its nearest existing folder)."""
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _fullest(candidates: Iterable[Path]) -> Path | None:
    measured = [(free, path) for path in candidates if (free := free_bytes(path)) is not None]
    return min(measured)[1] if measured else None


def disk_full_error(
    error: BaseException, candidates: Callable[[], Iterable[Path]] = default_candidates
) -> RunnerResourceExhausted | None:
    """The RunnerResourceExhausted for an error a full disk caused, else None. The path is the one
    the error names, else the fullest of `candidates()` (asked only then: workspace, DVC cache,
    temp dir)."""
    for item in exception_chain(error):
        if isinstance(item, RunnerResourceExhausted):
            return item
        named: str | None = None
        if isinstance(item, OSError) and item.errno in _FULL_ERRNOS:
            named = item.filename if isinstance(item.filename, str) else None
        elif any(marker in _text_of(item).lower() for marker in _FULL_MARKERS):
            quoted = _QUOTED_PATH.search(_text_of(item))
            named = quoted[1] if quoted else None
        else:
            continue
        path = Path(named) if named else _fullest(candidates())
        return _exhausted(path)
    return None


def _exhausted(path: Path | None) -> RunnerResourceExhausted:
    free = free_bytes(path) if path else None
    where = f"{path} ({human_size(free)} free)" if path and free is not None else str(path or "the runner's disk")
    return RunnerResourceExhausted(
        f"the runner's disk is full: no space left on {where}; free space on the runner (or use one with a "
        "bigger disk) and re-run: a re-run finishes the job",
        str(path) if path else None,
        free,
    )
