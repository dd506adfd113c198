"""On-disk cache of preprocessed arrays, keyed by the *content* of the source files.

Parsing the exp-map text files and running forward kinematics takes seconds per subject; the resulting position
arrays are stored as ``.npz`` under the cache folder and reused while the source bytes are unchanged. Keys hash the
file bytes with BLAKE2b (sizes and modification times are not trusted: copied or re-extracted files keep neither),
plus a pipeline version and the loader's parameters, so a change to any of them misses the cache. Files are written
to a temporary name and moved into place atomically, so concurrent loaders never read a half-written entry.

The folder is ``cache_dir`` when given, else ``$CRISSCROSS_CACHE`` (read at call time, never at import), else
``~/.cache/crisscross``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV_VAR", "ArrayCache", "bytes_digest", "file_digest", "resolve_cache_dir"]

CACHE_ENV_VAR = "CRISSCROSS_CACHE"
_DIGEST_BYTES = 20
_CHUNK = 1 << 22


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$CRISSCROSS_CACHE``, else ``~/.cache/crisscross`` (not created)."""
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "crisscross"


def bytes_digest(data: bytes, *extra: str) -> str:
    """Hex BLAKE2b digest of ``data`` followed by the ``extra`` strings."""
    digest = hashlib.blake2b(data, digest_size=_DIGEST_BYTES)
    for item in extra:
        digest.update(b"\0" + item.encode())
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    """Hex BLAKE2b digest of a file's bytes (read in chunks)."""
    digest = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArrayCache:
    """A folder of ``<key>.npz`` entries, each a dict of named arrays.

    Args:
        cache_dir: root cache folder (see :func:`resolve_cache_dir`).
        namespace: sub-folder separating kinds of entries (e.g. ``"motion-v1"``).
        enabled: when false, every lookup misses and nothing is written.
    """

    def __init__(self, cache_dir: str | Path | None = None, namespace: str = "arrays", enabled: bool = True) -> None:
        self.folder = resolve_cache_dir(cache_dir) / namespace
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path_for(self, key: str) -> Path:
        """Where the entry ``key`` lives."""
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or ``None`` when absent or unreadable."""
        if not self.enabled:
            return None
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, EOFError):  # a damaged entry is rebuilt, never trusted
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` atomically (write a temporary file, then rename)."""
        if not self.enabled:
            return
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def load_or_build(self, key: str, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The cached arrays for ``key``; on a miss, ``build()`` them and store the result."""
        cached = self.load(key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        arrays = build()
        self.save(key, arrays)
        return arrays
