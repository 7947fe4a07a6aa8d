"""DVC workflows as users run them, each on a fresh clone of a committed slice run.

Incremental reruns (the exact set of stages), metrics/params/plots across branches, the offline
plots page drawn in headless Chromium, queued experiments (apply, branch). `dvc exp run -S` and
remotes are tested in test_remote.py (an experiment pushed to S3 and pulled in another clone),
what the VS Code extension reads in test_clients.py.
"""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stages import compare as stages_compare
from stages.params.base import read_yaml
from stages.reporting.decide import BETTER_WHEN_TRAINED, LESS_RELIABLE
from tests.conftest import ABLATIONS, MODELS, REPO, clone_project, dvc, git, project_env, ran_stages, run


def per_model(stage: str, *models: str) -> set[str]:
    return {f"{stage}@{model}" for model in models}


def main_and_replicas(*models: str) -> set[str]:
    """What an edit to one model reruns: its main run (train, evaluate, plot) and its replica (seed 1)."""
    return per_model("train", *models) | per_model("evaluate", *models) | per_model("plot", *models) | {f"replica@{model}-1" for model in models}


def set_param(project: Path, dotted: str, value: object) -> None:
    path = project / "params.yaml"
    params = read_yaml(path.read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture()
def clone(workflow_base: Path, tmp_path: Path) -> Path:
    return clone_project(workflow_base, tmp_path / "clone")


def test_repro_after_a_full_run_does_nothing(clone: Path) -> None:
    # How long it takes is measured by benchmarks/train_speed.py (no-op dvc repro), not here.
    result = dvc("repro", cwd=clone)
    assert ran_stages(result.stdout) == set()
    assert "Data and pipelines are up to date" in result.stdout


def test_adding_a_seed_makes_only_that_seed_and_the_report_stale(clone: Path) -> None:
    # Six slice trainings to run it: `dvc status` says what DVC would rerun, which is what dvc.yaml's deps decide.
    set_param(clone, "replicas.seeds", [1, 2])
    set_param(clone, "ablations.seeds", [0, 1, 2])
    assert stale(clone) == {f"replica@{model}-2" for model in MODELS} | {"ablation@model4_glorot-2", "ablation@model2_adam-2", "report"}


def test_report_rules_rerun_only_the_report(clone: Path) -> None:
    set_param(clone, "report.overfit_significance", 0.01)
    assert ran_stages(dvc("repro", cwd=clone).stdout) == {"report"}


def stale(project: Path) -> set[str]:
    """Stages `dvc status` names as changed."""
    return set(json.loads(dvc("status", "--json", cwd=project).stdout))


# These two settings change every model: rerunning them all on the slice takes 4-6 minutes of CI, so
# the tests check what `dvc status` says DVC would rerun, which is what dvc.yaml's deps decide.
# (The stages after a training stage, evaluate and plot, follow when its model's bytes change.)
def test_shared_training_setting_makes_every_model_stale(clone: Path) -> None:
    set_param(clone, "train.seed", 7)
    set_param(clone, "ablations.seeds", [7, 1])
    # Replicas do not read train.seed; the ablations move to the new main seed.
    assert stale(clone) == per_model("train", *MODELS) | {"ablation@model4_glorot-7", "ablation@model2_adam-7", "report"}


def test_prepare_setting_makes_everything_that_reads_the_data_stale(clone: Path) -> None:
    set_param(clone, "prepare.test_size", 300)
    assert stale(clone) == {"prepare"}
    assert ran_stages(dvc("repro", "prepare", cwd=clone).stdout) == {"prepare"}
    ablations = {f"ablation@{name}-{seed}" for name in ABLATIONS for seed in (0, 1)}
    readers = per_model("train", *MODELS) | per_model("evaluate", *MODELS) | {f"replica@{model}-1" for model in MODELS} | ablations | {"report"}
    assert stale(clone) == readers


TRAINING = per_model("train", *MODELS) | {f"replica@{model}-1" for model in MODELS} | {f"ablation@{name}-{seed}" for name in ABLATIONS for seed in (0, 1)}


def test_editing_a_base_model_retrains_its_own_ablations_and_not_the_other_bases(clone: Path) -> None:
    """Model 2's dropout is kept by its Adam ablation: model2_adam's expanded declaration changes, model4_glorot's does not."""
    layers = read_yaml((clone / "params.yaml").read_text())["models"]["model2"]["layers"]
    assert layers[3] == {"Dropout": {"rate": 0.25}}
    set_param(clone, "models.model2.layers", [*layers[:3], {"Dropout": {"rate": 0.3}}, *layers[4:]])
    assert ran_stages(dvc("repro", *per_model("variant", *ABLATIONS), cwd=clone).stdout) == per_model("variant", *ABLATIONS)
    assert stale(clone) == {"train@model2", "replica@model2-1", "ablation@model2_adam-0", "ablation@model2_adam-1", "report"}


def test_report_code_and_report_schema_edits_leave_every_training_stage_up_to_date(clone: Path) -> None:
    for module in (
        "stages/report.py",
        "stages/params/report.py",
        *(f"stages/reporting/{name}.py" for name in ("claims", "stats", "observations", "overfit", "power", "results", "summary", "wording")),
    ):
        path = clone / module
        original = path.read_text()
        path.write_text(original + "\n# An edit to the report's code.\n")
        assert stale(clone) == {"report"}, module
        path.write_text(original)
    # figures.py draws for plot and report alike; still no training stage.
    path = clone / "stages/reporting/figures.py"
    path.write_text(path.read_text() + "\n# An edit to the figures.\n")
    assert stale(clone) == per_model("plot", *MODELS) | {"report"}


def test_a_training_schema_edit_makes_every_training_stage_stale(clone: Path) -> None:
    path = clone / "stages/params/training.py"
    path.write_text(path.read_text() + "\n# An edit to the training schema.\n")
    assert TRAINING <= stale(clone)


def test_editing_plot_code_makes_the_plots_stale(clone: Path) -> None:
    path = clone / "stages" / "plot.py"
    path.write_text(path.read_text() + "\n# An edit to the plotting code.\n")
    # Only the plot stages import plot.py (the report follows only if a figure's bytes change); `dvc status`
    # says what DVC would rerun, without the four slice plot stages' start-up in CI.
    assert stale(clone) == per_model("plot", *MODELS)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise AssertionError("Chromium is not installed: run `bash tests/install_chromium.sh` (the README test command does)")


def headless(url: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    # Flags as for any offline machine: no background connections, a fresh profile, no sandbox as root.
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=15000", *arguments, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_plots_page_draws_every_chart_offline(workflow_base: Path, tmp_path: Path) -> None:
    output = tmp_path / "plots"
    dvc("plots", "show", "-o", str(output), cwd=workflow_base)
    page = output / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr.net" not in html
    dom = headless(page.as_uri(), tmp_path / "profile", "--dump-dom").stdout
    # Per model: loss and accuracy curves and a confusion matrix; plus the all-models chart.
    assert dom.count("<canvas") == 3 * len(MODELS) + 1
    assert dom.count('<img src="static/') == 3 * len(MODELS)
    screenshot = tmp_path / "plots.png"
    headless(page.as_uri(), tmp_path / "profile2", "--window-size=1400,2400", f"--screenshot={screenshot}")
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 50_000

    # A page with DVC's `{scripts}` placeholder gets the CDN tags, and offline it draws nothing.
    default_template = tmp_path / "with-scripts.html"
    default_template.write_text("<!DOCTYPE html><html><head>{scripts}</head><body>{plot_divs}</body></html>")
    default = tmp_path / "default"
    dvc("plots", "show", "-o", str(default), "--html-template", str(default_template), cwd=workflow_base)
    assert "cdn.jsdelivr.net" in (default / "index.html").read_text()
    assert headless((default / "index.html").as_uri(), tmp_path / "profile3", "--dump-dom").stdout.count("<canvas") == 0


def wait_for_queue(project: Path, count: int) -> None:
    dvc("queue", "start", "-j", "1", cwd=project)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = dvc("queue", "status", cwd=project).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    dvc("queue", "stop", "--kill", cwd=project, check=False)
    assert status.count("Success") == count, status


def readme_exp_show_commands() -> list[list[str]]:
    """The `dvc exp show` commands of the README's "Compare runs" section, without their comments."""
    section = (REPO / "README.md").read_text().split("## Compare runs", 1)[1].split("\n## ", 1)[0]
    return [shlex.split(line.split("  #")[0]) for line in section.splitlines() if line.startswith("dvc exp show")]


def compare(project: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "stages", "compare", *arguments], project, check=check)


def test_a_queued_sweep_is_compared_with_the_baseline_and_its_experiments_apply_and_branch(clone: Path, tmp_path: Path) -> None:
    """The user's loop: DVC's grid queues two experiments that change one model, `dvc queue start` runs
    them, the compare command decides each against the baseline across seeds; then apply and branch."""
    dvc("exp", "run", "--queue", "-S", "models.model3.optimizer.learning_rate=0.05,0.1", cwd=clone)
    wait_for_queue(clone, 2)
    names = dvc("exp", "list", "--name-only", cwd=clone).stdout.split()
    assert len(names) == 2
    # Each experiment reran model3's main run and replica and the report; the variants read every model (a second each).
    for name in names:
        assert ran_stages(dvc("queue", "logs", name, cwd=clone).stdout) == main_and_replicas("model3") | per_model("variant", *ABLATIONS) | {"report"}

    found = json.loads(compare(clone, "main", *names, "--json").stdout)
    # Only model3's declaration differs: 2 candidates x 1 model x 2 measures, one Holm family.
    assert found["models"] == ["model3"] and found["holm_tests"] == 4 and [side["name"] for side in found["candidates"]] == names
    swept = {
        read_yaml(run(["git", "show", f"{side['commit']}:params.yaml"], clone).stdout)["models"]["model3"]["optimizer"]["learning_rate"]
        for side in found["candidates"]
    }
    assert swept == {0.05, 0.1}
    for item in found["comparisons"]:
        assert item["model"] == "model3" and item["runs"] == [2, 2] and item["measure"] in ("test accuracy", "test loss")
        assert item["verdict"] in {"supported", "not supported", "inconclusive", BETTER_WHEN_TRAINED, LESS_RELIABLE}
        low, high = item["interval_low"], item["interval_high"]
        assert low is None or (item["measure"] != "test accuracy" or -1 <= low <= high <= 1)
    table = compare(clone, "main", *names).stdout
    assert table.startswith(f"Is {', '.join(names)} better than main? model3:") and table.count("model3") >= 4
    markdown = compare(clone, "main", *names, "--md").stdout
    assert "| candidate | model | measure |" in markdown and markdown.count("| model3 |") == 4
    figure = tmp_path / "sweep.png"
    compare(clone, "main", *names, "--plot", str(figure))
    assert figure.read_bytes().startswith(b"\x89PNG")

    # The README's `dvc exp show` commands fit a 160-column terminal, experiments included, no column cut to "…".
    commands = readme_exp_show_commands()
    assert len(commands) >= 2
    for command in commands:
        shown = subprocess.run(
            [str(Path(sys.executable).parent / "dvc"), *command[1:], "--no-pager"],
            cwd=clone,
            env={**project_env(), "COLUMNS": "160"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "…" not in shown and max(len(line) for line in shown.splitlines()) <= 160, shown
        assert all(name in shown for name in names), shown

    # A branch made from an experiment compares like the experiment, and DVC's own diffs move only model3.
    dvc("exp", "branch", names[0], "faster-sgd", cwd=clone)
    by_branch = json.loads(compare(clone, "main", "faster-sgd", "--json").stdout)
    by_name = json.loads(compare(clone, "main", names[0], "--json").stdout)
    assert [item["effect"] for item in by_branch["comparisons"]] == [item["effect"] for item in by_name["comparisons"]]
    params = json.loads(dvc("params", "diff", "main", "faster-sgd", "--json", cwd=clone).stdout)
    assert list(params["params.yaml"]) == ["models.model3.optimizer.learning_rate"]
    diff = json.loads(dvc("metrics", "diff", "main", "faster-sgd", "--all", "--json", cwd=clone).stdout)
    compact = diff["reports/metrics.json"]
    changed = {key for key, change in compact.items() if change["old"] != change["new"]}
    # On a one-epoch slice SGD stays at chance either way (the same accuracy), but not at the same loss.
    assert changed & {"model3.acc", "model3.loss"} and {key.split(".")[0] for key in changed} <= {"model3", "claims"}
    # The evidence is no metric: a model3 edit moves only model3's numbers and, perhaps, the verdicts.
    assert "reports/claims.json" not in diff and "reports/summary.json" not in diff
    others = [change for path, metrics in diff.items() if "model3" not in path and path != "reports/metrics.json" for change in metrics.values()]
    assert others and all(change["old"] == change["new"] for change in others)
    output = tmp_path / "plots-diff"
    dvc("plots", "diff", "main", "faster-sgd", "-o", str(output), cwd=clone)
    page = (output / "index.html").read_text()
    assert '"main"' in page and '"faster-sgd"' in page

    dvc("exp", "apply", names[1], cwd=clone)
    assert ran_stages(dvc("repro", cwd=clone).stdout) == set()
    untracked = [line for line in run(["git", "status", "--porcelain"], clone).stdout.splitlines() if line.startswith("??")]
    assert untracked == []


def test_compare_refuses_bad_input_in_one_line_and_writes_nothing(clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figure = tmp_path / "never.png"

    def refused(*arguments: str) -> str:
        result = compare(clone, *arguments, "--plot", str(figure), check=False)
        assert result.returncode == 1 and not figure.exists(), result
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert len(lines) == 1, lines
        return lines[0]

    assert "no git revision, branch or DVC experiment named 'no-such-run'" in refused("main", "no-such-run")
    assert "declare the same models and ablations: nothing to compare" in refused("main", "main")

    def branch(name: str, message: str, **settings: object) -> None:
        """A branch off main with `settings` (dotted keys, `.` as `__`) committed and nothing run."""
        git("checkout", "-q", "main", cwd=clone)
        git("checkout", "-q", "-b", name, cwd=clone)
        for dotted, value in settings.items():
            set_param(clone, dotted.replace("__", "."), value)
        git("commit", "-qam", message, cwd=clone)

    # Other training settings on one side: not one change.
    branch("two-epochs", "two epochs", train__epochs=2)
    assert "differ in `train` (train.epochs: 1 vs 2)" in refused("main", "two-epochs")
    # A seed added and never run: no per-seed results on that side.
    branch("unrun", "a seed added, nothing run", replicas__seeds=[1, 2])
    assert "unrun has no per-seed results for model3: replica@model3-2 is not in its dvc.lock" in refused("main", "unrun", "--model", "model3")
    # A model edit committed without its runs: the results on that side are not its params'.
    branch("stale", "model3 edited, not run", models__model3__optimizer__learning_rate=0.2)
    assert "stale's results for model3 are not from its params.yaml (train@model3 in its dvc.lock differs" in refused("main", "stale")
    assert "declares no model or ablation 'model9'" in refused("main", "stale", "--model", "model9")
    # Model 2's learning rate is no difference to the ablation that swaps in Adam (its variant, as resolved, is the same):
    # only model2 is named, and its results on that side are not its params'.
    branch("adadelta-edit", "model2's learning rate, not run", models__model2__optimizer__learning_rate=0.5)
    assert "adadelta-edit's results for model2 are not from its params.yaml" in refused("main", "adadelta-edit")
    monkeypatch.chdir(clone)
    assert stages_compare.chosen_models(stages_compare.resolve("main"), [stages_compare.resolve("adadelta-edit")], []) == ["model2"]


def test_one_params_edit_adds_a_model_with_its_stages_report_rows_and_figures(clone: Path) -> None:
    """A fifth model is one new key under `models`: no edit to dvc.yaml or to the tests."""
    params = read_yaml((clone / "params.yaml").read_text())
    model5 = copy.deepcopy(params["models"]["model2"])
    model5["layers"][5]["Dense"]["units"] = 64
    params["models"]["model5"] = model5
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # The variant stages read every model: they rerun (a second each) and rewrite nothing.
    assert stale(clone) == {"train@model5", "evaluate@model5", "plot@model5", "replica@model5-1", "report"} | per_model("variant", *ABLATIONS)
    ran = ran_stages(dvc("repro", cwd=clone).stdout)
    assert ran == {"train@model5", "evaluate@model5", "plot@model5", "replica@model5-1", "report"} | per_model("variant", *ABLATIONS)
    assert "### model5" in (clone / "reports/report.md").read_text()
    assert json.loads((clone / "reports/summary.json").read_text())["model5"]["seeds"] == 2
    shown = json.loads(dvc("plots", "show", "--json", cwd=clone).stdout)
    assert {f"reports/figures/model5/{name}.png" for name in ("loss", "accuracy", "weights")} <= set(shown["data"])
