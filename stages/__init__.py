"""Stages of the MNIST CNN pipeline, one module per `dvc.yaml` stage plus shared modules.

Run a stage from the repository root as a module, for example `python -m stages.train model1`;
`dvc repro` does this for every stage in `dvc.yaml`.
"""

import os

# TensorFlow prints C++ log lines (oneDNN notices, CUDA probing) when it is first imported, before
# any of our code can configure logging. The environment variable is the only switch that reaches
# them, so it is set here, before any stage module imports Keras. A user who wants the noise back
# exports TF_CPP_MIN_LOG_LEVEL=0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
