"""benchmarks/train_speed.py's memory figure: the children's peak resident set in GiB on each OS."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from benchmarks.train_speed import children_peak_gib


def test_the_peak_of_a_child_is_read_in_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    # A child that touches 0.25 GiB: the peak is at least that.
    subprocess.run([sys.executable, "-c", "block = bytearray(2**28); block[::4096] = b'x' * len(block[::4096])"], check=True)
    peak = children_peak_gib()
    if sys.platform == "win32":
        assert peak is None  # Windows' Python has no resource module
        return
    assert peak is not None and 0.25 <= peak < 8, peak
    resource = importlib.import_module("resource")
    counted = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss counts KiB on Linux and bytes on macOS.
    monkeypatch.setattr(sys, "platform", "darwin")
    assert children_peak_gib() == pytest.approx(counted / 2**30)
    monkeypatch.setattr(sys, "platform", "linux")
    assert children_peak_gib() == pytest.approx(counted / 2**20)


def test_without_the_resource_module_there_is_no_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "resource", None)
    assert children_peak_gib() is None
