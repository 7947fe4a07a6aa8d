"""The MNIST CNN pipeline: one thin entry point per `dvc.yaml` stage (`stages/<stage>.py`) and the
libraries they call, by concern: `params/` (params.yaml's schemas), `data/`, `training/`,
`reporting/`, and `tools/` (the import closure behind dvc.yaml's code deps; no stage imports it).

Run a stage from the repository root, for example `python -m stages train model1 --data ...`
(see `python -m stages`); `dvc repro` does this for every stage in `dvc.yaml`.
"""

import os

# TensorFlow prints C++ log lines (oneDNN notices, CUDA probing) when it is first imported, before
# any of our code can configure logging. The environment variable is the only switch that reaches
# them, so it is set here, before any stage module imports Keras. (`stages/__main__.py` also holds
# back what C++ writes to stderr while TensorFlow starts, and shows it only if the start fails.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
