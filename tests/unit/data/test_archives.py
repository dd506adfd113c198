"""Archives unpack on every Python the project supports, and never write outside the unpack folder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from crisscross.data.archives import unpack_once
from crisscross.data.errors import DataError


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def python_3_11_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tarfile`` as Python 3.11.0 to 3.11.3 have it: no ``data_filter`` and no ``filter`` argument."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    original = tarfile.TarFile.extractall

    def extractall(self, path=".", members=None, *, numeric_owner=False, **kwargs):
        if kwargs:
            raise TypeError(f"extractall() got an unexpected keyword argument {next(iter(kwargs))!r}")
        return original(self, path, members, numeric_owner=numeric_owner, filter="fully_trusted") \
            if hasattr(tarfile, "fully_trusted_filter") else original(self, path, members, numeric_owner=numeric_owner)

    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)


@pytest.mark.parametrize("old_python", [False, True])
def test_an_archive_unpacks(tmp_path: Path, request: pytest.FixtureRequest, old_python: bool) -> None:
    if old_python:
        request.getfixturevalue("python_3_11_2")
    archive = _archive(tmp_path / "toy-v1.tar.xz", {"toy/S1/a.txt": b"1,2,3\n", "toy/S2/b.txt": b"4\n"})
    folder = unpack_once(archive, tmp_path / "cache")
    assert (folder / "toy" / "S1" / "a.txt").read_bytes() == b"1,2,3\n"
    assert unpack_once(archive, tmp_path / "cache") == folder  # unpacked once per archive content


@pytest.mark.parametrize("old_python", [False, True])
def test_a_member_outside_the_folder_is_refused(tmp_path: Path, request: pytest.FixtureRequest,
                                                old_python: bool) -> None:
    if old_python:
        request.getfixturevalue("python_3_11_2")
    archive = _archive(tmp_path / "evil-v1.tar.xz", {"../escaped.txt": b"x"})
    with pytest.raises(DataError, match="evil-v1.tar.xz") as err:
        unpack_once(archive, tmp_path / "cache" / "deep")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
