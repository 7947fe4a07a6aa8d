"""Download stage: MNIST into one verified `.npz` under `data/raw/`, with a provenance record.

Run: `python -m stages download --out data/raw/mnist.npz --provenance data/raw/provenance.json`.
Sources and an optional local file come from `params.yaml: download`; see `stages.data.mnist`.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from stages.data.mnist import ARRAY_NAMES, acquire
from stages.data.npz import write_npz
from stages.files import write_json
from stages.params.base import load
from stages.params.data import DataParams

logger = logging.getLogger(__name__)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages download")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--provenance", type=Path, required=True)
    args = parser.parse_args(argv)

    params = load(DataParams).download
    with tempfile.TemporaryDirectory(prefix="mnist-download-") as workdir:
        arrays, provenance = acquire(params.sources, params.local_file, Path(workdir))
    write_npz(args.out, {name: arrays[name] for name in ARRAY_NAMES}, compress=True)
    write_json(args.provenance, provenance)
    logger.info("MNIST from source %r: %d train and %d test images -> %s", provenance["source"], len(arrays["y_train"]), len(arrays["y_test"]), args.out)
