"""`python -m benchmarks.portability --stage`: a fresh clone retrains a committed stage and lists what
changed; the same bytes leave only the stage's run record and its hash in dvc.lock."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.machine import cpu_id
from benchmarks.portability import REPORT, emulator, lock_changes, markdown, record_of, results_apart, stage_check
from stages.files import read_json
from tests.conftest import git

RECORD = "reports/runs/replica/model3-seed-1.json"


def lock(record_md5: str, model_md5: str, deps_md5: str = "d1") -> dict:
    outs = [{"path": "reports/replicas/model3/seed-1", "md5": model_md5}, {"path": RECORD, "md5": record_md5}]
    cmd = f"python -m stages replica model3 --seed 1 --record {RECORD} --backup checkpoints/x"
    return {"stages": {"replica@model3-1": {"cmd": cmd, "deps": [{"path": "data/prepared/train.npz", "md5": deps_md5}], "outs": outs}, "prepare": {"outs": []}}}


def test_the_run_record_is_read_from_the_stage_command() -> None:
    assert record_of(lock("r", "m")["stages"]["replica@model3-1"]) == RECORD
    assert record_of({"cmd": "python -m stages report"}) is None


def test_a_new_run_record_alone_is_the_same_bytes_and_any_other_hash_is_not() -> None:
    before = lock("r1", "m1")
    assert lock_changes(before, lock("r2", "m1"), "replica@model3-1", RECORD) == []
    assert lock_changes(before, lock("r2", "m2"), "replica@model3-1", RECORD) == ["replica@model3-1"]
    assert lock_changes(before, lock("r1", "m1", deps_md5="d2"), "replica@model3-1", RECORD) == ["replica@model3-1"]
    other = copy.deepcopy(before)
    other["stages"]["prepare"]["outs"] = [{"path": "data/prepared", "md5": "p"}]
    assert lock_changes(before, other, "replica@model3-1", RECORD) == ["prepare"]
    # The record left out of the comparison only for the stage that reran.
    assert lock_changes(before, lock("r2", "m1"), "prepare", RECORD) == ["replica@model3-1"]


def test_a_fresh_clone_retrains_a_committed_replica_to_the_same_bytes(pipeline_run: Path) -> None:
    check = stage_check("replica@model3-1", pipeline_run)
    assert set(check["files_changed"]) <= {"dvc.lock", RECORD}, check
    assert RECORD in check["files_changed"]  # it did run: the record holds this run's timings
    assert check["lock_entries_changed"] == [] and check["same_bytes"] is True
    assert check["commit"] == git("rev-parse", "HEAD", cwd=pipeline_run).stdout.strip()


def test_a_stage_the_lock_does_not_hold_is_named(pipeline_run: Path) -> None:
    with pytest.raises(SystemExit, match=r"--stage replica@model9-1: no such stage in .*dvc.lock"):
        stage_check("replica@model9-1", pipeline_run)


def test_the_committed_table_is_what_the_committed_json_renders() -> None:
    report, expected = read_json(REPORT.with_suffix(".json")), read_json(REPORT.parent.parent / "fingerprint.json")
    assert markdown(report, expected) == REPORT.with_suffix(".md").read_text()
    for check in report.get("stage_checks", []):
        assert check["same_bytes"] == (not check["lock_entries_changed"] and set(check["files_changed"]) <= {"dvc.lock", record_path(check)}), json.dumps(check)


def test_a_row_names_the_cpus_family_and_model_beside_its_name(tmp_path: Path) -> None:
    """Two CPUs can share a model name and not a model: a row names both where it recorded them."""
    here = cpu_id()
    assert here == "" or (here.startswith("family ") and " model " in here), here
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 167\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel\t\t: 9\n")
    assert cpu_id(cpuinfo) == "family 6 model 167" and cpu_id(tmp_path / "none") == ""
    expected = read_json(REPORT.parent.parent / "fingerprint.json")
    pinned = expected["environment"]["numerics"]
    digests = {name: {"weights": "ab" * 8, "predictions": "cd" * 8} for name in expected["models"]}
    row = {"cpu": "Intel(R) Xeon(R) Processor", "flags": "avx2, fma", "caches": "L1d 48K", "setting": "pinned", "numerics": pinned, "models": digests}
    table = markdown({"rows": [{**row, "cpu_id": "family 6 model 167"}, {**row, "caches": "L1d 32K"}]}, expected)
    assert "| Intel(R) Xeon(R) Processor, family 6 model 167 (avx2, fma) | L1d 48K | pinned |" in table
    assert "| Intel(R) Xeon(R) Processor (avx2, fma) | L1d 32K | pinned |" in table


def record_path(check: dict) -> str:
    kind, _, name = check["stage"].partition("@")
    model, _, seed = name.rpartition("-")
    return f"reports/runs/{kind}/{model}-seed-{seed}.json"


def test_emulating_a_cpu_without_qemu_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("benchmarks.portability.shutil.which", lambda name: None)
    with pytest.raises(SystemExit, match=r"--emulate needs QEMU's user-mode emulator, qemu-x86_64 \(Debian: apt-get install qemu-user\)"):
        emulator("EPYC-Milan")


def test_an_emulated_check_says_it_is_emulated_and_compares_each_model_with_this_cpu() -> None:
    pair = {"here": {"weights": "a" * 16, "predictions": "b" * 16}, "emulated": {"weights": "a" * 16, "predictions": "c" * 16}}
    check = {
        "cpu": "QEMU 7.2.22 -cpu EPYC-Milan, emulated on AMD EPYC",
        "flags": "avx2, fma; no avx512f",
        "host_caches": "L1d 32K",
        "setting": "pinned: oneDNN on, ISA AVX2, 2 threads",
        "steps": 1,
        "models": {"model2": pair},
        "same_bytes": False,
        "seconds": {"here": 10, "emulated": 1234},
    }
    table = markdown({"rows": [], "emulated_checks": [check]}, read_json(REPORT.parent.parent / "fingerprint.json"))
    cpu = "QEMU 7.2.22 -cpu EPYC-Milan, emulated on AMD EPYC (avx2, fma; no avx512f)"
    assert (
        f"| {cpu} | L1d 32K | pinned: oneDNN on, ISA AVX2, 2 threads | 1 | model2 | aaaaaaaa / bbbbbbbb | aaaaaaaa / cccccccc | **no** | 10 / 1,234 |" in table
    )
    for committed in read_json(REPORT.with_suffix(".json")).get("emulated_checks", []):
        assert ", emulated on " in committed["cpu"] and "no avx512f" in committed["flags"], committed["flags"]
        assert committed["same_bytes"] == all(pair["here"] == pair["emulated"] for pair in committed["models"].values())


def test_results_that_moved_say_how_far_from_the_committed_ones(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "replicas" / "model2" / "seed-1"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"test_accuracy": 0.9767, "test_loss": 0.0727, "train_loss": 0.11, "seed": 1}))
    (out / "predictions.txt").write_text("7210414969\n")
    git("init", "-q", cwd=tmp_path)
    git("add", ".", cwd=tmp_path)
    git("commit", "-q", "-m", "committed", cwd=tmp_path)
    (out / "metrics.json").write_text(json.dumps({"test_accuracy": 0.9771, "test_loss": 0.0719, "train_loss": 0.11, "seed": 1}))
    (out / "predictions.txt").write_text("7210414861\n")  # the 8th and 10th images classified otherwise
    changed = ["reports/replicas/model2/seed-1/metrics.json", "reports/replicas/model2/seed-1/predictions.txt", RECORD]
    apart = results_apart(tmp_path, changed)
    # An unchanged predictions.txt beside a changed metrics.json: none classified otherwise; a DVCLive summary is no result.
    git("checkout", "--", "reports/replicas/model2/seed-1/predictions.txt", cwd=tmp_path)
    summary = out / "training" / "metrics.json"
    summary.parent.mkdir()
    summary.write_text(json.dumps({"loss": 0.1}))
    git("add", str(summary), cwd=tmp_path)
    git("commit", "-q", "-m", "summary", cwd=tmp_path)
    summary.write_text(json.dumps({"loss": 0.2}))
    unchanged = results_apart(tmp_path, [changed[0], "reports/replicas/model2/seed-1/training/metrics.json"])
    assert unchanged == {changed[0]: apart[changed[0]], changed[1]: {"images": 10, "classified_otherwise": 0}}
    assert apart == {
        changed[0]: {
            "test_accuracy": {"committed": 0.9767, "here": 0.9771},
            "test_loss": {"committed": 0.0727, "here": 0.0719},
            "train_loss": {"committed": 0.11, "here": 0.11},
        },
        changed[1]: {"images": 10, "classified_otherwise": 2},
    }
    check = {"stage": "replica@model2-1", "cpu": "A CPU", "caches": "L1d 48K", "commit": "0" * 40, "seconds": 1000, "load_15min": 2.0}
    check |= {"files_changed": changed, "lock_entries_changed": ["replica@model2-1"], "same_bytes": False, "results": apart, "how": "by hand"}
    table = markdown({"rows": [], "stage_checks": [check]}, read_json(REPORT.parent.parent / "fingerprint.json"))
    assert f"| replica@model2-1 | A CPU | `{changed[1]}` | - | 2 of 10 test images classified otherwise |" in table
    assert "test_accuracy 0.9767, test_loss 0.0727, train_loss 0.11 | test_accuracy 0.9771, test_loss 0.0719, train_loss 0.11 |" in table
