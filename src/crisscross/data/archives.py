"""Dataset archives (``.tar.xz`` and other ``tar`` files) unpacked once into the cache folder.

An archive is unpacked into ``<cache>/datasets/<archive name without .tar*>`` (never next to the archive, e.g. into a
repository) and reused while its bytes are unchanged: a marker file in the unpacked folder records the archive's
digest. Unpacking goes to a temporary sibling folder that is renamed into place, so concurrent processes never see a
half-unpacked copy.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from crisscross.data.cache import file_digest, resolve_cache_dir
from crisscross.data.errors import DataError

__all__ = ["UNPACK_MARKER", "find_archive", "unpack_once"]

#: Name of the marker file holding the digest of the archive a folder was unpacked from.
UNPACK_MARKER = ".crisscross-unpacked"


def find_archive(folder: Path, patterns: Sequence[str]) -> Path | None:
    """The first archive in ``folder`` matching ``patterns`` (tried in order, names sorted); ``None`` if none."""
    if not folder.is_dir():
        return None
    for pattern in patterns:
        archives = sorted(folder.glob(pattern))
        if archives:
            return archives[0]
    return None


def safe_extract(tar: tarfile.TarFile, dest: Path, archive: Path) -> None:
    """Extract ``tar`` into ``dest``, refusing members that would land outside it.

    Python 3.11.4 and later (and the security releases of older ones) have ``tarfile``'s ``"data"`` filter, which
    also drops links to outside, device files and unsafe modes. Before it (Python 3.11.0 to 3.11.3) only regular
    files and folders are extracted, each checked to stay inside ``dest``; a link or special file is refused.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    members = tar.getmembers()
    for member in members:
        target = (root / member.name).resolve()
        if not (member.isfile() or member.isdir()):
            raise DataError(f"{archive}: member {member.name!r} is not a regular file or folder")
        if member.name.startswith("/") or (target != root and root not in target.parents):
            raise DataError(f"{archive}: member {member.name!r} would be written outside the unpack folder")
    tar.extractall(dest, members=members)  # every member checked above


def unpack_once(archive: Path, cache_dir: str | Path | None) -> Path:
    """Unpack ``archive`` into ``<cache>/datasets/<name>`` unless already done for the same archive bytes.

    Raises:
        DataError: the archive cannot be read or unpacked.
    """
    digest = file_digest(archive)
    stem = archive.name.split(".tar")[0]
    target = resolve_cache_dir(cache_dir) / "datasets" / stem
    marker = target / UNPACK_MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=target.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            safe_extract(tar, staging, archive)
        (staging / UNPACK_MARKER).write_text(digest + "\n")
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first; use its copy when it is complete
            if not (marker.is_file() and marker.read_text().strip() == digest):
                raise
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"{archive}: cannot unpack ({err})") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
