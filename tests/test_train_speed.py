"""benchmarks/train_speed.py's memory figure: the children's peak resident set in GiB on each OS."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from benchmarks.train_speed import children_peak_gib


def test_the_peak_of_a_child_is_read_in_gib_and_none_without_the_resource_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # A child that holds about 0.25 GiB: the peak is at least that (Linux counts ru_maxrss in KiB).
    subprocess.run([sys.executable, "-c", "block = bytearray(2**28); block[::4096] = b'x' * len(block[::4096])"], check=True)
    peak = children_peak_gib()
    assert peak is not None and 0.25 <= peak < 8, peak
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    monkeypatch.setattr(sys, "platform", "darwin")  # macOS counts it in bytes
    assert children_peak_gib() == pytest.approx(kib / 2**30)
    monkeypatch.setitem(sys.modules, "resource", None)  # Windows: no such module
    assert children_peak_gib() is None
