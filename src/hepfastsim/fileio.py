"""Atomic file output: every file hepfastsim writes appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hepfastsim.errors import HepFastSimError


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary file beside path; it replaces path only when the block succeeds, else it is removed.

    With overwrite=False an existing path is refused before any work is done, so a user's
    file is never lost or half-written; and the finished file is published with a hard link, which fails
    if another writer created path in the meantime (two concurrent runs): then this run's output is kept
    beside it under a unique name and the error says where.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise HepFastSimError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes the file private (0600); give it the permissions of a normal new file
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _publish_new(tmp: Path, path: Path) -> None:
    """Give tmp the name path only if path does not exist (atomic on POSIX file systems with hard links)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        kept = path.with_name(f"{path.stem}.{os.getpid()}{path.suffix}")
        os.replace(tmp, kept)
        raise HepFastSimError(f"{path} was created by another writer while this one ran; "
                              f"this run's output is kept as {kept}") from None
    except OSError:  # no hard links on this file system: the check at the start is all there is
        os.replace(tmp, path)
