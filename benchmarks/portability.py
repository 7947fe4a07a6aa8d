"""Portability: does this CPU compute the committed bytes, and how far apart are the bytes where not?

Run from the repository root, with `data/raw/mnist.npz` present (`dvc repro download`):

    python -m benchmarks.portability              # this machine's rows, appended to reports/benchmarks/portability.{json,md}
    python -m benchmarks.portability --distance   # also one full epoch per model, pinned against native oneDNN
    python -m benchmarks.portability --stage replica@model3-1   # a fresh clone retrains one committed stage
    python -m benchmarks.portability --emulate EPYC-Milan --models model2 --steps 1   # on a CPU QEMU emulates

For each setting below it runs `python -m stages fingerprint` (each declared model 20 batches from
seed 0, digests of weights and predictions) in a scratch copy of `params.yaml` whose `numerics` is
that setting, so that the setting is applied before TensorFlow starts, as in the stages. The pinned
setting's digests are compared with the committed `reports/fingerprint.json`; every setting's are
kept so that another CPU's rows can be compared with these. `--distance` trains one full epoch
(429 batches) of every model under the pinned and the native setting and reports, per model, the
largest relative weight difference (over the weight tensors, max |a - b| / max |a|), the relative
L2 difference of all weights and the relative difference of the epoch's training loss: what a CPU that cannot give the pinned bytes should expect.
`--stage` is the check a user makes of the committed runs: it clones this checkout's HEAD (`git clone`, no
DVC cache), copies in the stage's dependencies that other stages make (the prepared data) from this working
tree, runs `dvc repro -f -s <stage>` there and lists what changed: the same bytes leave only the stage's run
record (it holds timings) and that file's hash in `dvc.lock`. Where other bytes come back, it also records how far
the results are from the committed ones: each changed metrics.json's test accuracy and losses, and how many test
images each changed predictions.txt classifies otherwise.
`--emulate MODEL` runs the pinned setting's fingerprint twice, on this CPU and under QEMU's user-mode emulator
(`qemu-x86_64 -cpu MODEL`, Debian's `qemu-user`), and compares the digests per model. TensorFlow and oneDNN
then read that CPU model's CPUID (an AVX2-only EPYC-Milan, say: no AVX-512), so one machine can try what an
AVX2-only CPU computes. Then the same for Eigen's kernels (oneDNN off, no cap), a control: their instructions
are the same on every CPU and they gave the same bytes on the two AMD CPUs, so where they too differ emulated,
the emulated CPU cannot stand in for a real one (the difference need not come from the missing AVX-512). The
emulator translates every instruction: on the 2-core EPYC the whole fingerprint (six models, 20 batches) had
not finished after 70 minutes with a training beside it, so `--models` and `--steps` choose a smaller piece
(the committed digests hold 20 batches, so the comparison is with this CPU's run of the same piece).
Rows of machines this command did not run on (the probe's, `../shared/probes/README.md`) are kept
as they are in the JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.machine import cpu_id
from stages.files import read_json, read_npz, write_json, write_text
from stages.training.environment import NUMERIC_FLAGS, read_cpu

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "benchmarks" / "portability"
EXPECTED = ROOT / "reports" / "fingerprint.json"
# The digests a fingerprint gives per model, the ones the rows keep.
DIGESTS = ("weights", "predictions")
# (label, numerics): the pinned setting first, then those the probe compared.
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("pinned: oneDNN on, ISA AVX2, 2 threads", {"intra_op_threads": 2, "inter_op_threads": 2, "onednn": True, "onednn_isa": "AVX2"}),
    ("oneDNN on, ISA AVX2, 1 thread", {"intra_op_threads": 1, "inter_op_threads": 1, "onednn": True, "onednn_isa": "AVX2"}),
    ("oneDNN off, ISA cap AVX2, 2 threads", {"intra_op_threads": 2, "inter_op_threads": 2, "onednn": False, "onednn_isa": "AVX2"}),
    ("oneDNN off, no cap, 2 threads", {"intra_op_threads": 2, "inter_op_threads": 2, "onednn": False, "onednn_isa": "native"}),
    ("native: oneDNN on, no cap, 2 threads", {"intra_op_threads": 2, "inter_op_threads": 2, "onednn": True, "onednn_isa": "native"}),
)


def caches() -> str:
    """This CPU's caches per core, as Linux lists them (L1d 48K, L2 1024K, ...)."""
    found = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        found.append(f"L{level}{ {'Data': 'd', 'Instruction': 'i'}.get(kind, '') } {size}")
    return ", ".join(found) or "unknown"


def cpu_name(row: dict[str, Any]) -> str:
    """A row's CPU: the model name, and the family and model where the row records them."""
    return f"{row['cpu']}, {row['cpu_id']}" if row.get("cpu_id") else row["cpu"]


# numpy's names for the CPU features the rows list (its runtime CPUID detection, which sees QEMU's model).
NUMPY_FEATURES = {"AVX2": "avx2", "FMA3": "fma", "AVX512F": "avx512f", "AVX512VNNI": "avx512_vnni", "AVX512BF16": "avx512_bf16"}


def emulator(model: str) -> list[str]:
    """The command prefix that runs a program on QEMU's `model` of an x86-64 CPU."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise SystemExit("error: --emulate needs QEMU's user-mode emulator, qemu-x86_64 (Debian: apt-get install qemu-user)")
    return [qemu, "-cpu", model]


def emulated_cpu(model: str) -> dict[str, str]:
    """The row's CPU columns under `qemu-x86_64 -cpu model`: the emulator, the model, the features numpy detects."""
    probe = "from numpy._core._multiarray_umath import __cpu_features__ as f; print(','.join(k for k, v in f.items() if v))"
    prefix = emulator(model)
    found = subprocess.run([*prefix, sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split(",")
    version = subprocess.run([prefix[0], "--version"], check=True, capture_output=True, text=True).stdout.split()[2]
    flags = [name for feature, name in NUMPY_FEATURES.items() if feature in {word.strip() for word in found}]
    absent = [name for feature, name in NUMPY_FEATURES.items() if name not in flags]
    return {
        "cpu": f"QEMU {version} -cpu {model}, emulated on {read_cpu().model}",
        "flags": ", ".join(flags) + (f"; no {', '.join(absent)}" if absent else ""),
        "caches": "QEMU's model",
    }


def fingerprint(
    numerics: dict[str, Any], steps: int, raw: Path, weights: Path | None = None, emulate: str | None = None, models: str | None = None
) -> dict[str, Any]:
    """`python -m stages fingerprint` under `numerics`, in a scratch copy of params.yaml (on QEMU's `emulate`
    CPU model if given); its JSON result."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["numerics"] = numerics
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        out = Path(scratch, "result.json")
        command = [sys.executable, "-m", "stages", "fingerprint", "--raw", str(raw.resolve()), "--steps", str(steps), "--out", str(out)]
        command = [*(emulator(emulate) if emulate else []), *command, *(["--models", models] if models else [])]
        command += ["--update", "--expected", str(Path(scratch, "expected.json"))]
        if weights is not None:
            command += ["--weights", str(weights)]
        subprocess.run(command, cwd=scratch, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True, text=True)
        return read_json(out)


def distance(first: Path, second: Path) -> dict[str, float]:
    """How far apart two models' weights are: the largest relative difference over the weight tensors
    (max |a - b| / max |a|), and over all weights at once (||a - b|| / ||a||)."""
    a, b = read_npz(first), read_npz(second)
    largest = max(float(np.max(np.abs(a[key] - b[key])) / max(float(np.max(np.abs(a[key]))), 1e-30)) for key in a)
    flat_a, flat_b = (np.concatenate([arrays[key].ravel() for key in sorted(arrays)]) for arrays in (a, b))
    return {"weights_largest": largest, "weights_overall": float(np.linalg.norm(flat_a - flat_b) / np.linalg.norm(flat_a))}


# What --emulate runs: the pinned setting, and Eigen's kernels (oneDNN off, no cap), which gave the same bytes
# on the two AMD CPUs and whose instructions do not change with the CPU: a control for the emulation.
EMULATED_SETTINGS = (SETTINGS[0], SETTINGS[3])


def emulated_check(model: str, steps: int, models: str | None, raw: Path) -> list[dict[str, Any]]:
    """For each of EMULATED_SETTINGS, the fingerprint of `models` after `steps` batches here and on QEMU's `model`."""
    where = {**emulated_cpu(model), "host_caches": caches()}
    checks = []
    for label, numerics in EMULATED_SETTINGS:
        started = time.monotonic()
        native = fingerprint(numerics, steps, raw, models=models)
        native_seconds = time.monotonic() - started
        started = time.monotonic()
        emulated = fingerprint(numerics, steps, raw, emulate=model, models=models)
        emulated_seconds = time.monotonic() - started
        digests = {
            name: {"here": {key: native["models"][name][key] for key in DIGESTS}, "emulated": {key: value[key] for key in DIGESTS}}
            for name, value in emulated["models"].items()
        }
        checks.append(
            {
                **where,
                "setting": label,
                "steps": steps,
                "models": digests,
                "same_bytes": all(pair["here"] == pair["emulated"] for pair in digests.values()),
                "seconds": {"here": round(native_seconds), "emulated": round(emulated_seconds)},
                "packages": emulated["environment"]["packages"],
            }
        )
    return checks


def record_of(entry: dict[str, Any]) -> str | None:
    """The run record a stage's command writes (`--record PATH`), from its dvc.lock entry."""
    words = entry["cmd"].split()
    return words[words.index("--record") + 1] if "--record" in words else None


def lock_changes(before: dict[str, Any], after: dict[str, Any], stage: str, record: str | None) -> list[str]:
    """What a rerun of `stage` changed in dvc.lock, the run record's own hash left out: the stage names whose
    entries differ (`stage` itself if any dep, param or other output moved)."""

    def without_record(entry: dict[str, Any] | None) -> dict[str, Any] | None:
        if entry is None:
            return None
        return {**entry, "outs": [out for out in entry.get("outs", []) if out["path"] != record]}

    names = sorted(set(before["stages"]) | set(after["stages"]))
    changed = []
    for name in names:
        old, new = before["stages"].get(name), after["stages"].get(name)
        if name == stage:
            old, new = without_record(old), without_record(new)
        if old != new:
            changed.append(name)
    return changed


RESULTS = ("test_accuracy", "test_loss", "train_loss")


def results_apart(clone: Path, changed: list[str]) -> dict[str, Any]:
    """How far the retrained results in `clone` are from the committed ones: for each changed metrics.json that
    holds a test accuracy, its test accuracy and losses (committed and here), and for the predictions.txt beside it
    how many test images are classified otherwise (none where it did not change)."""
    apart: dict[str, Any] = {}

    def committed(path: str) -> str:
        return subprocess.run(["git", "show", f"HEAD:{path}"], cwd=clone, check=True, capture_output=True, text=True).stdout

    for path in changed:
        if not path.endswith("/metrics.json"):
            continue
        there, here = json.loads(committed(path)), json.loads((clone / path).read_text())
        if "test_accuracy" not in there or "test_accuracy" not in here:
            continue  # DVCLive's training summary: its history is in the plots
        apart[path] = {key: {"committed": there[key], "here": here[key]} for key in RESULTS if key in there and key in here}
        predictions = f"{path.rpartition('/')[0]}/predictions.txt"
        if (clone / predictions).is_file():
            before, after = committed(predictions).strip(), (clone / predictions).read_text().strip()
            apart[predictions] = {"images": len(after), "classified_otherwise": sum(a != b for a, b in zip(before, after, strict=False))}
    return apart


def stage_check(stage: str, source: Path = ROOT) -> dict[str, Any]:
    """Retrain `stage` in a fresh clone of `source`'s HEAD; what changed (see the module docstring)."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, check=True, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch, "clone")
        subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True, capture_output=True, text=True)
        before = yaml.safe_load((clone / "dvc.lock").read_text())
        if stage not in before["stages"]:
            raise SystemExit(f"error: --stage {stage}: no such stage in {source / 'dvc.lock'} at {commit[:7]}")
        made = {out["path"] for entry in before["stages"].values() for out in entry.get("outs", [])}
        for dep in before["stages"][stage].get("deps", []):
            if any(dep["path"] == out or dep["path"].startswith(f"{out}/") for out in made):
                origin, target = source / dep["path"], clone / dep["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if origin.is_dir() else shutil.copy2)(origin, target)
        started = time.monotonic()
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # the stages' `python`
        ran = subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", stage], cwd=clone, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if ran.returncode != 0:
            raise SystemExit(f"error: dvc repro -f -s {stage} failed in a fresh clone of {commit[:7]}:\n{ran.stdout}{ran.stderr}")
        record = record_of(before["stages"][stage])
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, check=True, capture_output=True, text=True)
        files = sorted(line[3:] for line in status.stdout.splitlines())
        after = yaml.safe_load((clone / "dvc.lock").read_text())
        results = results_apart(clone, files)
    lock = lock_changes(before, after, stage, record)
    others = [name for name in files if name not in {record, "dvc.lock"}]
    return {
        "stage": stage,
        "commit": commit,
        "seconds": round(seconds),
        "load_15min": round(os.getloadavg()[2], 1),
        "files_changed": files,
        "lock_entries_changed": lock,
        "same_bytes": not others and not lock,
        **({"results": results} if results else {}),
        "how": "python -m benchmarks.portability --stage",
    }


def agreement(rows: list[dict[str, Any]], models: list[str]) -> list[str]:
    """One table row per setting: how many CPUs have a row for it, and which models' digests all of them share."""
    lines = []
    for setting in dict.fromkeys(row["setting"] for row in rows):
        same = [row for row in rows if row["setting"] == setting]
        agreeing = [name for name in models if len({json.dumps(row["models"].get(name), sort_keys=True) for row in same}) == 1]
        verdict = "all" if len(agreeing) == len(models) else (", ".join(agreeing) or "none")
        lines.append(f"| {setting} | {len(same)} | {verdict if len(same) > 1 else '(one CPU only)'} |")
    return lines


def conclusions(rows: list[dict[str, Any]], expected: dict[str, Any], models: list[str]) -> list[str]:
    """What the rows say, computed from them (the why of the choice is docs/numerics.md's): the settings every CPU
    agrees on, and under the pin which CPUs compute the committed digests for every model, for some, for none."""
    pinned = expected["environment"]["numerics"]
    isa = f"its ISA capped at {pinned['onednn_isa']}" if pinned["onednn_isa"] != "native" else "no ISA cap"
    chosen = f"oneDNN {'on' if pinned['onednn'] else 'off'}, {isa}, {pinned['intra_op_threads']} intra- and {pinned['inter_op_threads']} inter-op threads"
    cpus = list(dict.fromkeys(cpu_name(row) for row in rows))
    unanimous = []
    for setting in dict.fromkeys(row["setting"] for row in rows):
        same = [row for row in rows if row["setting"] == setting]
        if len(same) == len(cpus) and all(len({json.dumps(row["models"].get(name), sort_keys=True) for row in same}) == 1 for name in models):
            unanimous.append(setting)
    committed = {name: {key: expected["models"][name][key] for key in DIGESTS} for name in models}
    every, some, none = [], [], []
    for row in rows:
        if row["numerics"] == pinned:
            same = [name for name in models if row["models"].get(name) == committed[name]]
            which = "" if len(same) in (0, len(models)) else f" ({', '.join(same)})"
            (every if len(same) == len(models) else some if same else none).append(cpu_name(row) + which)
    return [
        f"Chosen (`params.yaml: numerics`): {chosen}. Of the {len(cpus)} CPU models with rows, the settings under which every one",
        f"gives the same digests for every model: {', '.join(unanimous) or 'none'}. Under the chosen setting the committed digests come",
        f"from {'; '.join(every) or 'no CPU'} for every model; for some models only from {'; '.join(some) or 'no CPU'}; for none from",
        f"{'; '.join(none) or 'no CPU'}. Why this setting: docs/numerics.md.",
    ]


def markdown(report: dict[str, Any], expected: dict[str, Any]) -> str:
    rows, checks = report["rows"], report.get("stage_checks", [])
    models = list(expected["models"])
    lines = [
        "# Portability: the same bytes on another CPU?",
        "",
        "`python -m stages fingerprint` trains each declared model 20 batches (batch 140, seed 0, float32, the first 2,800",
        "training images) and digests its weights and its predictions on 1,000 images. Same machine, same settings: the",
        "same digests, run after run. Each row below is one CPU under one setting; a row whose digests equal the pinned",
        "row of another CPU says that setting gives the same bytes on both. Rows are added by `python -m benchmarks.portability`",
        "(the probe's rows come from `../shared/probes/README.md`, the same procedure written before the fingerprint command).",
        "",
        "## Do the CPUs differ?",
        "",
        "| setting | CPUs with a row | models whose digests agree on every one of them |",
        "|---|--:|---|",
        *agreement(rows, models),
        "",
        *conclusions(rows, expected, models),
        "",
        "## Every row",
        "",
        "Digests shown: the first 8 hex digits of the weights' MD5; `portability.json` holds both digests of every row, the",
        "weights' and the predictions'.",
        "",
        "| CPU | caches per core | setting | " + " | ".join(models) + " | pinned digests match the committed ones |",
        "|---|---|---|" + "---|" * len(models) + "---|",
    ]
    for row in rows:
        digests = " | ".join(row["models"].get(name, {}).get("weights", "-")[:8] for name in models)
        match = ""
        if row["numerics"] == expected["environment"]["numerics"]:
            committed = {name: {key: expected["models"][name][key] for key in DIGESTS} for name in models}
            same = [name for name in models if row["models"].get(name) == committed[name]]
            match = "yes" if len(same) == len(models) else f"**no**, the same for {', '.join(same) or 'none'}"
        lines.append(f"| {cpu_name(row)} ({row['flags']}) | {row['caches']} | {row['setting']} | {digests} | {match} |")
    distances = [row for row in rows if row.get("distance")]
    if distances:
        lines += [
            "",
            "## How far apart other kernels are after one epoch",
            "",
            "One full epoch (429 batches, 60,000 images) of every model under the pinned setting and under native oneDNN",
            "(`--distance`) on the same CPU: the largest relative weight difference in a tensor (max |a - b| / max |a|), the",
            "relative L2 difference of all weights, and the relative difference of the epoch's mean training loss. This is what",
            "a CPU that cannot give the pinned bytes should expect after one epoch (the train stage's line for such a CPU quotes",
            "it): rounding differences grow through training, so the Adam-trained models' weights follow another path; the",
            "epoch's loss stays within 0.3% but for Model 4's.",
            "",
            "| CPU | model | weights, largest relative difference in a tensor | all weights, relative L2 difference | training loss, relative difference |",
            "|---|---|--:|--:|--:|",
        ]
        for row in distances:
            lines += [
                f"| {row['cpu']} | {name} | {value['weights_largest']:.1e} | {value['weights_overall']:.1e} | {value['loss']:.1e} |"
                for name, value in row["distance"].items()
            ]
    emulated = report.get("emulated_checks", [])
    if emulated:
        lines += [
            "",
            "## An AVX2-only CPU, emulated (`--emulate`)",
            "",
            "The pinned setting's fingerprint of a piece (the models and batches named) on this CPU and under QEMU's",
            "user-mode emulator with the CPU model named, whose CPUID TensorFlow and oneDNN read: an emulated CPU without",
            "AVX-512, not a measured one. Digests: the first 8 hex digits of the weights' and the predictions' MD5;",
            "seconds: the fingerprint's here / emulated.",
            "",
            "| emulated CPU (features numpy detected under it) | host caches per core | setting | batches | model | here | emulated | same bytes | seconds |",
            "|---|---|---|--:|---|---|---|---|--:|",
        ]
        for check in emulated:
            for name, pair in check["models"].items():
                here, there = (f"{pair[side]['weights'][:8]} / {pair[side]['predictions'][:8]}" for side in ("here", "emulated"))
                same = "yes" if pair["here"] == pair["emulated"] else "**no**"
                seconds = f"{check['seconds']['here']:,} / {check['seconds']['emulated']:,}"
                where = f"{check['cpu']} ({check['flags']}) | {check['host_caches']} | {check['setting']} | {check['steps']}"
                lines.append(f"| {where} | {name} | {here} | {there} | {same} | {seconds} |")
        control = [check for check in emulated if check["setting"] == EMULATED_SETTINGS[1][0]]
        if any(not check["same_bytes"] for check in control):
            lines += [
                "",
                "Eigen's kernels (oneDNN off, no cap), the control, differ emulated too, though they gave the same bytes on the two",
                "real AMD CPUs with AVX-512: the emulated CPU is no stand-in for a real AVX2-only one.",
            ]
            pinned = expected["environment"]["numerics"]
            real = [row for row in rows if "avx512f" not in row["flags"] and row["numerics"] == pinned]
            committed = {name: {key: expected["models"][name][key] for key in DIGESTS} for name in models}
            same = [row for row in real if all(row["models"].get(name) == committed[name] for name in models)]
            if same:
                names = ", ".join(sorted({cpu_name(row) for row in same}))
                lines[-1] += f" A real one answered the question: {names}, with AVX2 only, computes the committed digests under the pin (above)."
            else:
                lines[-1] += " Whether such a CPU computes the committed bytes stays open until a session on one runs `python -m stages fingerprint`."
    if checks:
        lines += [
            "",
            "## A fresh clone retrains a committed stage (`--stage`)",
            "",
            "`git clone` of the commit, no DVC cache, the prepared data copied in, then `dvc repro -f -s <stage>`. Same bytes:",
            "nothing changed but the stage's run record (its timings) and that file's hash in `dvc.lock`. The seconds are",
            "the whole `dvc repro`; the 15-minute load average at its end says what else ran (about 2 for the stage alone on",
            "2 cores, about 4 with a second training beside it).",
            "",
            "| stage | CPU | caches per core | commit | seconds | load (15 min) | files changed | same bytes | how |",
            "|---|---|---|---|--:|--:|---|---|---|",
        ]
        for check in checks:
            files = ", ".join(f"`{name}`" for name in check["files_changed"]) or "none"
            lock = check["lock_entries_changed"]
            verdict = "yes" if check["same_bytes"] else f"**no**{' (dvc.lock: ' + ', '.join(lock) + ')' if lock else ''}"
            where = f"{check['stage']} | {cpu_name(check)} | {check['caches']} | {check['commit'][:7]}"
            load = "not taken" if check["load_15min"] is None else check["load_15min"]
            lines.append(f"| {where} | {check['seconds']:,} | {load} | {files} | {verdict} | {check['how']} |")
        apart = [check for check in checks if check.get("results")]
        if apart:
            lines += ["", "Where the bytes differ, how far the retrained results are from the committed ones:", ""]
            lines += ["| stage | CPU | file | committed | here |", "|---|---|---|---|---|"]
            for check in apart:
                for path, result in check["results"].items():
                    if "classified_otherwise" in result:
                        there, here = "-", f"{result['classified_otherwise']:,} of {result['images']:,} test images classified otherwise"
                    else:
                        there = ", ".join(f"{key} {value['committed']:.6g}" for key, value in result.items())
                        here = ", ".join(f"{key} {value['here']:.6g}" for key, value in result.items())
                    lines.append(f"| {check['stage']} | {cpu_name(check)} | `{path}` | {there} | {here} |")
    return "\n".join(lines) + "\n"


def save(out: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the report as it is on disk now (another run may have added rows while this one
    measured), then write its JSON and its table."""
    report = read_json(out.with_suffix(".json")) if out.with_suffix(".json").exists() else {"rows": []}
    change(report)
    write_json(out.with_suffix(".json"), report)
    write_text(out.with_suffix(".md"), markdown(report, read_json(EXPECTED)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.portability")
    parser.add_argument("--raw", type=Path, default=ROOT / "data/raw/mnist.npz")
    parser.add_argument("--distance", action="store_true", help="also one full epoch per model, pinned against native oneDNN")
    parser.add_argument("--stage", help="retrain this committed stage in a fresh clone of HEAD and record what changed")
    parser.add_argument("--emulate", metavar="MODEL", help="the pinned fingerprint here and on QEMU's MODEL of a CPU (qemu-x86_64 -cpu help lists them)")
    parser.add_argument("--models", help="with --emulate: comma-separated models (default: every one declared)")
    parser.add_argument("--steps", type=int, default=20, help="with --emulate: batches per model (default 20)")
    parser.add_argument("--out", type=Path, default=REPORT)
    args = parser.parse_args(argv)

    if args.stage:
        check = stage_check(args.stage)
        cpu = read_cpu()
        flags = ", ".join(sorted(cpu.flags & set(NUMERIC_FLAGS)))
        where = {"cpu": cpu.model, "cpu_id": cpu_id(), "flags": flags, "caches": caches()}
        save(args.out, lambda report: report.setdefault("stage_checks", []).append({**where, **check}))
        changed = ", ".join(check["files_changed"]) or "nothing"
        print(f"{args.stage}: {'same bytes' if check['same_bytes'] else 'OTHER BYTES'}; changed {changed} ({check['seconds']} s)")
        return
    if args.emulate:
        checks = emulated_check(args.emulate, args.steps, args.models, args.raw)
        save(args.out, lambda report: report.setdefault("emulated_checks", []).extend(checks))
        for check in checks:
            verdict = "same bytes" if check["same_bytes"] else "OTHER BYTES"
            print(f"{check['cpu']}, {check['setting']}: {verdict} as here ({', '.join(check['models'])}, {args.steps} batches)")
        return
    added, identity, cache_sizes = [], cpu_id(), caches()
    for label, numerics in SETTINGS:
        result = fingerprint(numerics, 20, args.raw)
        environment = result["environment"]
        row = {
            "cpu": environment["cpu"],
            "cpu_id": identity,
            "flags": ", ".join(environment["cpu_flags"]),
            "cores": environment["cpu_count"],
            "caches": cache_sizes,
            "setting": label,
            "numerics": numerics,
            "packages": environment["packages"],
            "models": {name: {key: value[key] for key in DIGESTS} for name, value in result["models"].items()},
        }
        added.append(row)
        print(label, flush=True)
    if args.distance:
        with tempfile.TemporaryDirectory() as scratch:
            pinned = fingerprint(SETTINGS[0][1], 429, args.raw, Path(scratch, "pinned"))
            native = fingerprint(SETTINGS[-1][1], 429, args.raw, Path(scratch, "native"))
            added[0]["distance"] = {
                name: {
                    **distance(Path(scratch, "pinned", f"{name}.npz"), Path(scratch, "native", f"{name}.npz")),
                    "loss": abs(pinned["models"][name]["loss"] - native["models"][name]["loss"]) / abs(pinned["models"][name]["loss"]),
                }
                for name in pinned["models"]
            }
    replaced = {(row["cpu"], row["caches"], row["setting"]) for row in added}

    def add_rows(report: dict[str, Any]) -> None:
        report["rows"] = [row for row in report["rows"] if (row["cpu"], row["caches"], row["setting"]) not in replaced] + added

    save(args.out, add_rows)


if __name__ == "__main__":
    main()
