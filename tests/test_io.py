"""Atomic, reproducible writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.files import atomic_path, read_npz, write_json, write_npz


def test_npz_round_trip_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    arrays = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([1, 2, 3])}
    write_npz(tmp_path / "a.npz", arrays)
    write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = read_npz(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded["x"], arrays["x"])
    assert loaded["x"].dtype == np.float32


def test_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json(target, {"accuracy": 0.9})
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text('{"accur')
        raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "accuracy": 0.9\n}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json"]
