"""The `.npz` writer of the data stages (download, prepare) and the fingerprint: the same bytes on
every covered Python.

Each array is one zip member opened with `force_zip64=True` (the member's size is not known before
`numpy` streams it) and a fixed timestamp. CPython's zipfile writes such a member's headers two
ways: 3.11.2 (Debian 12's `python3`) puts version 20 and the real sizes in the local header and
version 20 in the central directory, 3.11.7, 3.12.1 and 3.13.0 put version 45 (zip64) and
0xFFFFFFFF sizes there, the real sizes being in the zip64 extra field either way (measured with
the same calls on each interpreter; a fix to zipfile between those releases). `dvc.lock` records
the second layout, so `Zip64Member` writes it on every Python and a Debian 12 user's prepared
data hashes as committed. The arrays read back the same from both layouts.

Run from the stages that write arrays: `write_npz(path, {"x": images, "y": labels})`.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from stages.files import FIXED_ZIP_TIME, atomic_path

# The local file header's fields (APPNOTE 4.3.7): signature, version needed, flags, method, time,
# date, CRC-32, compressed size, uncompressed size, name length, extra length.
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
ZIP64_SIZES = 0xFFFFFFFF


class Zip64Member(zipfile.ZipInfo):
    """A zip member whose headers say zip64 as CPython 3.11.7 and later write them, on any Python."""

    __slots__ = ()

    def __init__(self, filename: str) -> None:
        super().__init__(filename, date_time=FIXED_ZIP_TIME)
        # The central directory takes the larger of these and what zipfile computes: 45 everywhere.
        self.create_version = self.extract_version = zipfile.ZIP64_VERSION

    def FileHeader(self, zip64: bool | None = None) -> bytes:
        header = super().FileHeader(zip64)
        if not zip64:
            return header
        fields = list(LOCAL_HEADER.unpack_from(header))
        fields[1] = zipfile.ZIP64_VERSION  # version needed to extract
        fields[8] = fields[9] = ZIP64_SIZES  # the real sizes are in the zip64 extra field
        return LOCAL_HEADER.pack(*fields) + header[LOCAL_HEADER.size :]


def write_npz(path: Path | str, arrays: Mapping[str, np.ndarray], compress: bool = False) -> None:
    """Write arrays as an `.npz` archive that `np.load` reads, with the same bytes on every covered
    Python, and atomically."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w", compression=compression, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = Zip64Member(f"{name}.npy")
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
