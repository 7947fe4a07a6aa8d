#!/usr/bin/env bash
# The README's sweep example, reproduced: a throwaway copy of this checkout on a slice (5,000 training and
# 1,000 test images, 3 epochs, seeds 0-2), its baseline run committed, DVC's grid over Model 1's learning
# rate queued and run, then `python -m stages compare` over the three experiments. About an hour on 2 cores.
# Usage, from the repository root with the project's venv active: bash docs/examples/sweep.sh [/tmp/sweep]
# (the comparison and its figure land in the copy's docs/examples/).
set -euo pipefail
target=${1:-/tmp/sweep}
rm -rf "$target" && mkdir -p "$target"
git ls-files -z | while IFS= read -r -d '' file; do
  if [ -f "$file" ]; then mkdir -p "$target/$(dirname "$file")" && cp -p "$file" "$target/$file"; fi
done
cd "$target" && git init -q -b main && rm dvc.lock
python - <<'PY'
from pathlib import Path

import yaml

from stages.params.base import read_yaml

path = Path("params.yaml")
params = read_yaml(path.read_text())
params["prepare"].update(train_size=5000, test_size=1000)
params["train"]["epochs"] = 3
params["replicas"]["seeds"] = [1, 2]
params["ablations"]["seeds"] = [0, 1, 2]
path.write_text(yaml.safe_dump(params, sort_keys=False))
PY
git add -A && git commit -qm "sweep slice: 5,000/1,000 images, 3 epochs, seeds 0-2"
dvc repro
git add -A && git commit -qm "sweep slice: baseline run"
dvc exp run --queue -S 'models.model2.optimizer.learning_rate=0.0003,0.003,0.01'
dvc queue start
while dvc queue status | grep -E "Queued|Running" >/dev/null; do sleep 10; done
python -m stages compare main $(dvc exp list --name-only) --plot docs/examples/sweep.png | tee docs/examples/sweep.txt
