"""Project tooling that no stage runs: the import closure behind `dvc.yaml`'s code deps."""
