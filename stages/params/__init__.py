"""`params.yaml`, one schema per concern: `data` (download, prepare), `training` (train, replicas,
models, ablations) and `report`; `base` reads the file and turns a library's errors into key paths."""
