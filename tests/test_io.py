"""Atomic, reproducible writes."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stages.data.npz import LOCAL_HEADER, write_npz
from stages.files import FIXED_ZIP_TIME, atomic_path, read_npz, write_json

# A float and an integer array, the dtypes the data stages write.
ARRAYS = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([1, 2, 3])}


def test_npz_round_trip_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    write_npz(tmp_path / "a.npz", ARRAYS)
    write_npz(tmp_path / "b.npz", ARRAYS)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = read_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded["x"], ARRAYS["x"])
    assert loaded["x"].dtype == np.float32


def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.9})
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text('{"accur')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "accuracy": 0.9\n}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json"]


def test_npz_members_carry_the_zip64_headers_dvc_lock_records(tmp_path: Path) -> None:
    """Local header: version 45 and 0xFFFFFFFF sizes with the real sizes in the zip64 extra field;
    central directory: version 45 (the layout CPython 3.11.7+ writes, and the committed data's)."""
    write_npz(tmp_path / "a.npz", ARRAYS, compress=True)
    raw = (tmp_path / "a.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        members = archive.infolist()
    assert [member.filename for member in members] == ["x.npy", "y.npy"]
    for member in members:
        assert (member.create_version, member.extract_version) == (zipfile.ZIP64_VERSION, zipfile.ZIP64_VERSION)
        fields = LOCAL_HEADER.unpack_from(raw, member.header_offset)
        assert fields[0] == b"PK\x03\x04" and fields[1] == zipfile.ZIP64_VERSION and fields[8:10] == (0xFFFFFFFF, 0xFFFFFFFF)
        extra_start = member.header_offset + LOCAL_HEADER.size + fields[10]
        assert struct.unpack_from("<HHQQ", raw, extra_start) == (1, 16, member.file_size, member.compress_size)
    loaded = read_npz(tmp_path / "a.npz")
    assert loaded.keys() == ARRAYS.keys() and all(np.array_equal(loaded[name], ARRAYS[name]) for name in ARRAYS)


def _file_header_as_cpython_3_11_2(original: Callable[..., bytes]) -> Callable[..., bytes]:
    """zipfile's local header as CPython 3.11.2 writes a small member opened with force_zip64: the
    version its attributes hold (not raised to 45) and the real sizes. Checked against the real
    interpreter (Debian 12's python3): under it zipfile's own calls give the same bytes for
    data/prepared/test.npz (md5 17bf9dfb...) as that Python does."""

    def file_header(self: zipfile.ZipInfo, zip64: bool | None = None) -> bytes:
        versions = (self.extract_version, self.create_version)
        header = original(self, zip64)
        self.extract_version, self.create_version = versions
        fields = list(LOCAL_HEADER.unpack_from(header))
        fields[1] = self.extract_version
        fields[8:10] = (self.compress_size, self.file_size)
        return LOCAL_HEADER.pack(*fields) + header[LOCAL_HEADER.size :]

    return file_header


def test_npz_bytes_do_not_depend_on_how_the_python_writes_zip64_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bytes under 3.11.2's header writer (emulated) as under this Python's; zipfile's own
    calls, the control, give other bytes there (so the emulation changes what it claims to)."""

    def plain_zipfile(path: Path) -> None:
        with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
            for name, array in ARRAYS.items():
                with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME), "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    write_npz(tmp_path / "here.npz", ARRAYS)
    plain_zipfile(tmp_path / "plain-here.npz")
    monkeypatch.setattr(zipfile.ZipInfo, "FileHeader", _file_header_as_cpython_3_11_2(zipfile.ZipInfo.FileHeader))
    write_npz(tmp_path / "old.npz", ARRAYS)
    plain_zipfile(tmp_path / "plain-old.npz")
    assert (tmp_path / "old.npz").read_bytes() == (tmp_path / "here.npz").read_bytes()
    assert (tmp_path / "plain-old.npz").read_bytes() != (tmp_path / "plain-here.npz").read_bytes()
