"""Every sentence of the report, rendered from the typed results (pure functions, no decisions).

The rules' wording exists here once, generated from `params.yaml: report` (`rules_text`): the report
prints it and the README's test checks the README quotes it. The claims, observations and tables
are rendered from the facts `claims.py`, `observations.py` and `results.py` computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stages.params.report import ReportParams
from stages.params.training import ModelSpec
from stages.reporting import observations as facts
from stages.reporting import summary
from stages.reporting.claims import INCONCLUSIVE, MEASURES_DISAGREE, Claim, Comparison, OverfitFacts, Run, spread
from stages.reporting.overfit import Sign
from stages.reporting.results import Inputs, Results
from stages.reporting.stats import McNemar, format_p
from stages.reporting.summary import percent

QUOTES = {
    1: "Model 1 overfits (train loss 0.008, test loss 0.026).",
    2: "Model 2 performed better than Model 3.",
    3: "Model 3 (SGD) is stuck in a local minimum and is the worst.",
    4: "he_normal initialisation slightly sped up convergence (Model 4 vs Model 4 with Keras' default).",
    5: "Model 4 is the best (highest accuracy, fast convergence, no overfitting).",
    6: "Adam did better than the other optimizers (Model 2's layers with Adam vs Adadelta and SGD).",
}


def _sd(value: float, scale: float = 1.0, digits: int = 2) -> str:
    """A standard deviation, or "-" where one seed gives none."""
    return "-" if math.isnan(value) else f"{scale * value:.{digits}f}"


def _seeds(count: int) -> str:
    return f"{count} seed{'s' if count != 1 else ''}"


def _epochs(epochs: Sequence[float]) -> str:
    """Epochs to a threshold, per seed: "1, 2, never"."""
    return ", ".join("never" if math.isinf(epoch) else str(int(epoch)) for epoch in epochs)


def _effect(value: float, unit: str) -> str:
    return f"{100 * value:+.2f} points" if unit == "points" else f"{value:+.4f}"


def _minimum(comparison: Comparison) -> str:
    measure = comparison.measure
    return f"{100 * measure.min_effect:g} points" if measure.unit == "points" else f"{measure.min_effect:g}"


def rules_text(rules: ReportParams) -> str:
    """The verdict rules, from the params: the one description (report and README)."""
    families = (
        "the superiority tests form one family and the equivalence tests another"
        if rules.holm_families == "separate"
        else "the superiority and equivalence tests form one family"
    )
    return (
        f"Every comparison is a test across seeds, adjusted with Holm's method at {rules.significance_level:g} ({families}). "
        f"**Supported**: the effect in the claim's direction is at least the minimum effect ({100 * rules.min_accuracy_difference:g} points of test "
        f"accuracy; for claim 4, {100 * rules.min_convergence_difference:g} points of mean validation accuracy and "
        f"{rules.min_train_loss_difference:g} of mean training loss over epochs 1-{rules.convergence_window}) and its Holm-adjusted p is below "
        f"{rules.significance_level:g}. **Not supported**: the opposite effect passes that rule, or the equivalence test (two one-sided Welch "
        "tests against plus and minus the minimum effect, Holm-adjusted) shows the difference is smaller. **Inconclusive** otherwise, with the "
        f"simulated chance that this whole rule (Welch's test, the level Holm gives that test, the minimum effect, the equivalence branch) says "
        f"supported if the true effect were {rules.power_effect:g} times the minimum, and the seeds per model that chance needs to reach "
        f"{rules.power_target:g} ({rules.simulations:,} simulated experiments per count; at 1 times the minimum no number of seeds passes 0.5). "
        "Tests: Welch's t-test across seeds where the values have spread, the exact permutation test where neither side has any (its smallest "
        "possible p printed). A claim about one model must hold at every seed. **Overfitting**: from the lowest "
        f"{rules.overfit_window}-epoch stretch of the validation loss to the last epoch, the validation loss's least-squares slope is positive "
        f"(one-sided p below {rules.overfit_significance:g}) while the training loss's slope is negative; beside it, the rule's false-alarm rate on "
        "each run's own noise (that run with a flat tail). **Claim 4** is decided on both measures: supported or not supported when they agree, "
        f'"{MEASURES_DISAGREE}" when one says supported and the other not supported. **Claim 3** has two parts: at chance '
        f"(test accuracy at most {100 * rules.chance_accuracy:g}% at every seed) and the worst; and a local minimum, supported unless some step along the "
        f"negative gradient at the main run's final weights lowers the training loss by more than {rules.landscape_tolerance:g} (the evaluate "
        "stage's landscape)."
    )


def comparison_text(comparison: Comparison) -> str:
    """One comparison in words: effect, interval, the test by name, raw and Holm p, and its outlook."""
    unit = comparison.measure.unit
    low, high = comparison.interval
    interval = "" if math.isnan(low) else f", 95% interval {_effect(low, unit)} to {_effect(high, unit)}".replace(" points to", " to")
    test = comparison.test
    if comparison.smallest_p > 0:
        test += f" (smallest p possible with these seeds: {format_p(comparison.smallest_p)})"
    text = (
        f"{comparison.better} vs {comparison.worse}, {comparison.measure.name}: {_effect(comparison.difference, unit)}{interval} "
        f"in the claim's favour; {test} p = {format_p(comparison.p_value)}, Holm {format_p(comparison.p_holm)}"
    )
    if not math.isnan(comparison.equivalence_p):
        text += f"; equivalence within ±{_minimum(comparison)} (TOST) Holm p = {format_p(comparison.equivalence_p_holm)}"
    outlook = comparison.outlook
    if comparison.verdict == INCONCLUSIVE and outlook is not None and not math.isnan(outlook.chance):
        at = _effect(outlook.effect, unit).lstrip("+")
        needed = (
            f"{outlook.seeds_needed} seeds per model would reach {outlook.target:g}" if outlook.seeds_needed else f"not reachable within {outlook.most} seeds"
        )
        text += f"; chance this rule says supported at a true {at} with {_seeds(outlook.seeds)}: {outlook.chance:.2f}, {needed}"
    return f"{text}: {comparison.verdict}"


def _mcnemar(first: str, second: str, test: McNemar) -> str:
    return f"main seed, McNemar: {test.only_first} images only {first} gets right, {test.only_second} only {second}, exact p = {format_p(test.p_value)}"


def _signs(signs: Sequence[Sign]) -> str:
    return ", ".join(
        f"from epoch {sign.validation.first_epoch} {sign.validation.slope:+.5f}/epoch (p {format_p(sign.validation.p_rising)}, "
        f"train {sign.training.slope:+.5f}/epoch): {'fires' if sign.fires else 'does not fire'}, false alarms {sign.false_alarm:.2f}"
        for sign in signs
    )


def _overfitting(item: OverfitFacts, claimed: bool) -> str:
    fired = sum(sign.fires for sign in item.signs)
    alarms = [sign.false_alarm for sign in item.signs if not math.isnan(sign.false_alarm)]
    alarm = f"{min(alarms):.2f}-{max(alarms):.2f}" if alarms else "-"
    what = "the overfitting sign" if claimed else "no overfitting sign"
    return (
        f"{item.model} shows the sign at {fired} of {len(item.signs)} seeds (validation-loss slope after its lowest stretch, per seed: "
        f"{_signs(item.signs)}); the rule's false-alarm rate on these runs' own noise {alarm}; {what} at every seed: {item.verdict}"
    )


def claim_evidence(claim: Claim, rules: ReportParams) -> str:
    if claim.missing:
        return f"{', '.join(claim.missing)} has no runs"
    described = "; ".join(comparison_text(item) for item in claim.comparisons)
    if claim.number == 1:
        gap = claim.overfitting.gap
        return f"{_overfitting(claim.overfitting, True)}; supporting: test loss minus inference-mode train loss {gap.mean:.4f} ± {_sd(gap.sd, digits=4)}"
    if claim.number in (2, 6):
        prefix = "same layers, one change: " if claim.number == 6 else ""
        return prefix + described + "; " + "; ".join(_mcnemar(*item) for item in claim.mcnemar)
    if claim.number == 3:
        stuck, (worst, minimum) = claim.stuck, claim.parts
        prior = "" if math.isnan(stuck.prior_loss) else f" against {stuck.prior_loss:.4f} for predicting the class frequencies"
        text = (
            f"**{worst.name}: {worst.verdict}**. {stuck.model} test accuracy {100 * stuck.accuracy.mean:.2f}% (range {100 * stuck.accuracy.low:.2f}-"
            f"{100 * stuck.accuracy.high:.2f}%), at most {100 * rules.chance_accuracy:g}% at every seed: {stuck.at_chance}; it predicts one class for "
            f"every test image at {stuck.one_class} of {len(stuck.accuracy.values)} seeds, test loss {stuck.loss.mean:.4f}{prior}: it learned the "
            f"class prior and nothing else; worst: {described}. **{minimum.name}: {minimum.verdict}**. "
        )
        landscape = stuck.landscape
        if landscape is None:
            return text + "No loss landscape was measured (reports/eval/<model>/landscape.json)."
        step, fall = landscape.largest_fall
        steps = ", ".join(f"{loss:.6f} at {size:g}" for size, loss in landscape.steps)
        return text + (
            f"At the main run's final weights the training loss on {landscape.images:,} training images is {landscape.loss:.6f}, gradient norm "
            f"{landscape.gradient_norm:.3g}; along the negative gradient (unit steps) it is {steps}: {'down' if fall > 0 else 'up'} "
            f"{abs(fall):.2g} at step {step:g}, against the tolerance {rules.landscape_tolerance:g}"
            + (": a descent direction, so a plateau the optimizer crawls along, not a minimum" if fall > rules.landscape_tolerance else "")
        )
    if claim.number == 4:
        parts = "; ".join(f"{part.name}: {part.verdict}" for part in claim.parts)
        shown = "; ".join(
            f"{item.model}: mean validation accuracy over epochs 1-{rules.convergence_window} {100 * item.val_area.mean:.2f}%, mean training loss "
            f"{item.train_area.mean:.4f}, epochs to {100 * rules.convergence_accuracy:g}% " + _epochs(item.epochs_to)
            for item in claim.convergence
        )
        return f"{described}; the two measures: {parts}; shown, not deciding: {shown}"
    if claim.number == 5:
        return f"{described}; {_overfitting(claim.overfitting, False)}"
    raise ValueError(f"no claim {claim.number}")


def claims_table(claims: Sequence[Claim], rules: ReportParams) -> str:
    lines = ["| # | The notebook says | Evidence from this run | Verdict |", "|--:|---|---|---|"]
    lines += [f"| {claim.number} | {QUOTES[claim.number]} | {claim_evidence(claim, rules)} | **{claim.verdict}** |" for claim in claims]
    return "\n".join(lines) + "\n"


def seed_table(runs: Mapping[str, Sequence[Run]], rules: ReportParams) -> str:
    """Per model: mean, sd and range over seeds of test accuracy and loss, loss ratio, convergence."""
    lines = [
        f"| Model | Seeds | Test accuracy, mean ± sd (range) | Test loss, mean ± sd (range) | Test/train loss ratio | "
        f"Epochs to {100 * rules.convergence_accuracy:g}% val. accuracy, per seed |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for name, model_runs in runs.items():
        accuracy = spread(model_runs, lambda run: run.test_accuracy)
        loss = spread(model_runs, lambda run: run.test_loss)
        ratio = spread(model_runs, lambda run: run.loss_ratio)
        epochs = [run.epochs_to(rules.convergence_accuracy) for run in model_runs]
        reached = [epoch for epoch in epochs if not math.isinf(epoch)]
        listed = _epochs(epochs)
        seeds = ", ".join(str(run.seed) for run in model_runs)
        lines.append(
            f"| {name} | {seeds} | {100 * accuracy.mean:.2f}% ± {_sd(accuracy.sd, 100)} ({100 * accuracy.low:.2f}-{100 * accuracy.high:.2f}) | "
            f"{loss.mean:.4f} ± {_sd(loss.sd, digits=4)} ({loss.low:.4f}-{loss.high:.4f}) | {ratio.mean:.2f} ± {_sd(ratio.sd)} | "
            f"{listed}{'' if len(reached) == len(epochs) else f' ({len(reached)} of {len(epochs)} reached it)'} |"
        )
    return "\n".join(lines) + "\n"


def at_chance_text(at_chance: Mapping[str, Sequence[int]], seeds: Mapping[str, int], rules: ReportParams) -> str:
    """One sentence under the seed table: which runs ended at chance, by model and seed, or that none did."""
    threshold = percent(rules.chance_accuracy)
    failed = {name: found for name, found in at_chance.items() if found}
    if not failed:
        return f"No run ended at chance (test accuracy at most {threshold}) at any seed."
    parts = []
    for name, found in failed.items():
        if len(found) == seeds[name]:
            parts.append(f"{name} at every seed")
        else:
            listed = ", ".join(str(seed) for seed in found)
            parts.append(f"{name} at seed{'s' if len(found) > 1 else ''} {listed} ({len(found)} of {seeds[name]})")
    return (
        f"**Runs at chance** (test accuracy at most {threshold}; chance is 10%): {'; '.join(parts)}. "
        "The spreads above and the claims' tests count them like every other run."
    )


def observation_text(item: facts.Observation, rules: ReportParams) -> str:
    if isinstance(item, facts.FailedToLearn):
        return (
            f"**{item.model} failed to learn**: test accuracy {percent(item.test_accuracy)} is at most {percent(rules.chance_accuracy)} "
            f"(chance is 10%); it predicts class {item.most_predicted_class} for {percent(item.most_predicted_share)} of the test images."
        )
    if isinstance(item, facts.OverfitSign):
        sign = item.sign
        return (
            f"**{item.model} {'shows' if sign.fires else 'does not show'} the sign of overfitting on this run**: {_signs([sign])} "
            "(the rule is in the claims section; across seeds, the claims table decides)."
        )
    if isinstance(item, facts.Best):
        if item.runner_up is None:
            return f"**{item.best}** is the only model: test accuracy {percent(item.best_accuracy)}."
        test = item.test
        gap = item.best_accuracy - item.runner_up_accuracy
        reason = f"McNemar exact p = {test.p_value:.3g}: {test.only_first} test images only {item.best} gets right, {test.only_second} only {item.runner_up}"
        if item.significant:
            return (
                f"**{item.best} is the best model on this run**: test accuracy {percent(item.best_accuracy)}, "
                f"{100 * gap:.2f} points above {item.runner_up} ({percent(item.runner_up_accuracy)}); {reason}."
            )
        return (
            f"**{item.best} and {item.runner_up} are indistinguishable at this sample size**: test accuracy "
            f"{percent(item.best_accuracy)} and {percent(item.runner_up_accuracy)}, {100 * gap:.2f} points apart; {reason}."
        )
    raise TypeError(f"no wording for {type(item).__name__}")


def observations_text(items: Sequence[facts.Observation], rules: ReportParams) -> list[str]:
    """The numbered observations: one sentence per fact, the convergence facts in one."""
    lines = [observation_text(item, rules) for item in items if not isinstance(item, facts.Convergence)]
    threshold = percent(rules.convergence_accuracy)
    speeds = []
    for item in items:
        if isinstance(item, facts.Convergence):
            reached = (
                f"reached {threshold} validation accuracy at epoch {int(item.reached)}"
                if not math.isinf(item.reached)
                else f"never reached {threshold} validation accuracy"
            )
            speeds.append(f"{item.model} {reached} and had its best validation loss at epoch {item.best_epoch} of {item.epochs}")
    lines.append("Convergence (descriptive; an integer measure decides nothing here): " + "; ".join(speeds) + ".")
    lines.append(
        "Initialisers and optimizers differ between these models together with their layers, so this run does not rank them; "
        "the claims table compares each with a one-change ablation (claims 4 and 6)."
    )
    return lines


def declaration_in_words(spec: ModelSpec, description: Mapping[str, Any], fit: Mapping[str, Any]) -> str:
    rate = description["learning_rate"]
    optimizer = f"{description['optimizer']} (learning rate {rate:g})" if rate is not None else description["optimizer"]
    epochs = f"{fit['epochs']} epoch{'s' if fit['epochs'] != 1 else ''}"
    return (
        f"{description['conv_layers']} convolution layers with {description['activation']} activation, {len(spec.layers)} layers in all; "
        f"{optimizer}; kernel initialisers {description['initializer']}; loss {spec.loss}; precision {spec.precision}. "
        f"Trained for {epochs} with batch size {fit['batch_size']} on {fit['train_images']:,} images (its time and machine: `reports/runs/`)."
    )


def layer_table(layers: Sequence[Mapping[str, Any]], totals: Mapping[str, int]) -> str:
    """Markdown version of Keras' `model.summary()`: layer (type), output shape, parameters, totals."""
    lines = ["| Layer (type) | Output shape | Param # |", "|---|---|--:|"]
    lines += [f"| {layer['name']} ({layer['type']}) | {layer['output_shape']} | {layer['params']:,} |" for layer in layers]
    lines.append("")
    lines.append(f"Total params: {totals['total']:,} · Trainable params: {totals['trainable']:,} · Non-trainable params: {totals['non_trainable']:,}")
    return "\n".join(lines)


def class_count_table(train_counts: Sequence[int], test_counts: Sequence[int]) -> str:
    lines = ["| Digit | " + " | ".join(str(digit) for digit in range(len(train_counts))) + " |", "|---|" + "--:|" * len(train_counts)]
    lines.append("| Train | " + " | ".join(f"{count:,}" for count in train_counts) + " |")
    lines.append("| Test | " + " | ".join(f"{count:,}" for count in test_counts) + " |")
    return "\n".join(lines)


# The claim whose verdict turns on a gap too small for a 0-100% axis: its figure gets a zoomed panel.
ZOOMED_CLAIM = 5
VALIDATION_ACCURACY = "validation accuracy on the test set (%)"


def claim_figures(rules: ReportParams, models: Sequence[str]) -> list[tuple[int, list[str], str, str]]:
    """(claim, models, history key, axis label) of each claim's figure: the per-seed curves it rests on."""
    named = rules.claims
    return [
        (2, list(named.better), "val_accuracy", VALIDATION_ACCURACY),
        (4, list(named.faster_convergence), "val_accuracy", VALIDATION_ACCURACY),
        (4, list(named.faster_convergence), "loss", "training loss (dropout on)"),
        (ZOOMED_CLAIM, [named.best, *(name for name in models if name not in (named.best, named.stuck))], "val_accuracy", VALIDATION_ACCURACY),
        (6, list(named.best_optimizer), "val_accuracy", VALIDATION_ACCURACY),
    ]


def environment_section(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per CPU model the runs were trained on: how many runs of each kind, its instruction-set flags, and
    which of them the pinned numerics leave unused (a flag the CPU has above the oneDNN ISA cap)."""
    rows: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for record in records:
        environment = record.get("environment") or {}
        key = (str(environment.get("cpu")), str(environment.get("platform")), *sorted(environment.get("cpu_flags") or []))
        rows.setdefault(key, []).append(record)
    lines = [
        "## Environment",
        "",
        "Where the runs were trained, one row per CPU model (as the run records in `reports/runs/` name it), with the software and numerics below.",
        "",
        "| CPU | Runs trained | Instruction-set flags | Unused under the pinned numerics |",
        "|---|---|---|---|",
    ]
    software = set()
    for (cpu, platform, *flags), group in rows.items():
        kinds: dict[str, int] = {}
        for record in group:
            kinds[record["stage"]] = kinds.get(record["stage"], 0) + 1
        environment = group[0].get("environment") or {}
        numerics = environment.get("numerics") or {}
        cap = numerics.get("onednn_isa")
        # Under an AVX2 cap oneDNN uses none of the AVX-512 or AMX instructions the CPU may have.
        unused = [flag for flag in flags if flag.startswith(("avx512", "amx"))] if cap and cap.upper() == "AVX2" else []
        reason = f"{', '.join(unused)}: present, unused below oneDNN's ISA cap {cap} (`params.yaml: numerics`)" if unused else "none"
        runs = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        lines.append(f"| {cpu} ({platform}, {environment.get('cpu_count')} cores) | {len(group)}: {runs} | {', '.join(flags) or 'none listed'} | {reason} |")
        for record in group:
            environment = record.get("environment") or {}
            packages = ", ".join(f"{name} {version or 'unknown'}" for name, version in (environment.get("packages") or {}).items())
            pinned = environment.get("numerics")
            numbers = (
                f"oneDNN {'on' if pinned['onednn'] else 'off'}, ISA {pinned['onednn_isa']}, {pinned['intra_op_threads']} intra-op and "
                f"{pinned['inter_op_threads']} inter-op threads"
                if pinned
                else f"numerics not pinned (oneDNN ISA cap {environment.get('onednn_isa_cap') or 'none'})"
            )
            software.add(f"Python {environment.get('python')}, {packages}; {numbers}")
    lines += ["", *(f"Software and numerics: {line}." for line in sorted(software))]
    return lines


def uncertainty_section(found: Results, seed: int) -> list[str]:
    lines = [
        "## How sure: one run's uncertainty",
        "",
        f"Test accuracy on the main seed ({seed}) with its 95% Wilson score interval over the test images.",
        "",
        "| Model | Test accuracy | 95% interval | Errors |",
        "|---|--:|---|--:|",
    ]
    lines += [
        f"| {item.model} | {percent(item.accuracy)} | {percent(item.low)} - {percent(item.high)} | {item.images - item.right:,} |" for item in found.intervals
    ]
    lines += [
        "",
        "McNemar's exact test for each pair, on the same test images: the images only the first model gets right, "
        f"those only the second gets right, the two-sided p-value (exact binomial on those two counts) and that p adjusted with Holm's "
        f"method over the {len(found.pairs)} pairs. A p below what a float holds prints as a bound.",
        "",
        "| First | Second | Only first right | Only second right | p | Holm p |",
        "|---|---|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {item.first} | {item.second} | {item.test.only_first} | {item.test.only_second} | {format_p(item.test.p_value)} | {format_p(item.p_holm)} |"
        for item in found.pairs
    ]
    return lines


def answers_section(inputs: Inputs, found: Results, overview: str) -> list[str]:
    """What a reader came for, first: each model's accuracy and how sure, the overview figure, the six verdicts."""
    intervals = {item.model: item for item in found.intervals}
    lines = [
        "## Answers",
        "",
        f"| Model | Test accuracy, main run (seed {inputs.params.train.seed}) | its 95% interval | Over seeds: mean ± sd (n) | Runs at chance |",
        "|---|--:|---|--:|---|",
    ]
    for name, model_runs in inputs.runs.items():
        accuracy, failed = found.accuracy[name], found.at_chance[name]
        main = intervals[name] if name in inputs.specs else None
        shown = f"**{percent(main.accuracy)}** | {percent(main.low)} - {percent(main.high)}" if main else "(ablation) | "
        chance = f"{len(failed)} of {len(model_runs)}" + (f" (seed{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))})" if failed else "")
        lines.append(f"| {name} | {shown} | {100 * accuracy.mean:.2f}% ± {_sd(accuracy.sd, 100)} ({len(model_runs)}) | {chance} |")
    best = intervals[found.best]
    # How far ahead across seeds, and how sure: the claimed best's closest comparison in the claim that decides it.
    decided = next(claim for claim in found.claims if claim.number == ZOOMED_CLAIM)
    ahead = [item for item in decided.comparisons if item.better == found.best and item.measure.unit == "points"]
    margin = ""
    if ahead:
        closest = min(ahead, key=lambda item: item.difference)
        margin = (
            f" Across seeds it is {100 * closest.difference:+.2f} points ahead of {closest.worse} (Holm p = {format_p(closest.p_holm)}): "
            f"{closest.verdict} by the rules (claim {decided.number})."
        )
    lines += [
        "",
        f"Most accurate on the main run: **{found.best}** ({percent(best.accuracy)}).{margin} A run at chance ended at most "
        f"{percent(inputs.rules.chance_accuracy)} test accuracy (chance is 10%); the means count it like every run.",
        "",
        f"![Validation accuracy per epoch of every run of the four models]({overview})",
        "",
        "The notebook's six claims, each decided across seeds by the rules in `params.yaml: report` ([the evidence](#the-claims-evidence)):",
        "",
        *[f"{claim.number}. {QUOTES[claim.number]} **{claim.verdict}**" for claim in found.claims],
    ]
    return lines


def report_markdown(inputs: Inputs, found: Results, figures: Mapping[str, str], plots: str, claims_file: str) -> str:
    """reports/report.md from the inputs and the results, answers first; `figures` are the report's own figures
    as links, `plots` the plot stage's folder (its weight violins) and `claims_file` claims.json, both as links."""
    rules, train, test = inputs.rules, inputs.train, inputs.test
    count = min(rules.sample_digits, len(train["y"]))
    claim_images = []
    for number, _, key, label in claim_figures(rules, list(inputs.specs)):
        claim_images += [f"![Claim {number}: {label} per epoch, every run]({figures[f'claim{number}_{key}']})", ""]
    seeds = ", ".join(str(run.seed) for run in next(iter(inputs.runs.values())))
    sections = [
        "# MNIST CNNs: which model is best, and how sure",
        "",
        f"Generated by the `report` stage of `dvc repro` from {len(train['y']):,} training and {len(test['y']):,} test images; "
        "edit `params.yaml`, not this file.",
        "",
        *answers_section(inputs, found, figures["overview"]),
        "",
        "## The claims' evidence",
        "",
        f"Verdict rules, declared in `params.yaml: report` before the numbers. {rules_text(rules)} McNemar's exact test on the main seed is "
        f"shown where two models are compared. Each claim's numbers are also in [`{claims_file}`]({claims_file}), a DVC metric. In the figures "
        "each seed is a thin line, the main run a bold one, and a run that ended at chance is dashed.",
        "",
        claims_table(found.claims, rules),
        *claim_images,
        "## Seed to seed",
        "",
        f"Each model trained at seeds {seeds} (the main run and the `replica` stages; ablations at the same seeds). Standard deviations are "
        "sample ones (n - 1); epochs to the threshold are listed per seed, `never` where a run did not reach it.",
        "",
        seed_table(inputs.runs, rules),
        at_chance_text(found.at_chance, {name: len(model_runs) for name, model_runs in inputs.runs.items()}, rules),
        "",
        *uncertainty_section(found, inputs.params.train.seed),
        "",
        "## The notebook's comparison table",
        "",
        summary.markdown_table(list(found.table)),
        "",
        "## Models in detail",
    ]
    for name, spec in inputs.specs.items():
        fit, result = inputs.fits[name], inputs.metrics[name]
        sections += [
            "",
            f"### {name}",
            "",
            declaration_in_words(spec, summary.describe(spec), fit),
            "",
            f"Test accuracy {100 * result['test_accuracy']:.2f}%, test loss {result['test_loss']:.4f}; "
            f"last-epoch train accuracy {100 * result['train_accuracy']:.2f}%, train loss {result['train_loss']:.4f}.",
            "",
            f"![{name}: loss and accuracy per epoch, every run]({figures[f'{name}_curves']})",
            "",
            f"![{name} confusion matrix, errors on their own scale]({figures[f'{name}_confusion']})",
            "",
            f"![{name} trained weights per layer]({plots}/{name}/weights.png)",
        ]
    sections += [
        "",
        "## Observations on the main run",
        "",
        *[f"{number}. {text}" for number, text in enumerate(observations_text(found.observations, rules), start=1)],
        "",
        f"## What the most accurate model on this run gets wrong: {found.best}",
        "",
        f"The first {len(found.misclassified)} of {found.misclassified_total} misclassified test digits, true label as predicted label.",
        "",
        f"![{found.best} misclassified test digits]({figures['misclassified']})",
        "",
        "## Data",
        "",
        f"{len(train['y']):,} training and {len(test['y']):,} test images, 28x28 grey levels scaled to [0, 1]. "
        "The validation curves are computed on the test images, as in the notebook (`validation_data=(x_test, y_test)`): "
        "no choice in this pipeline is made on them, but the curves are not an independent held-out estimate, and a "
        "model picked by its validation curve would be picked on the test set.",
        "",
        f"![The first {count} training images with their labels]({figures['samples']})",
        "",
        class_count_table(np.bincount(train["y"], minlength=10).tolist(), np.bincount(test["y"], minlength=10).tolist()),
        "",
        "## Layer tables",
    ]
    for name in inputs.specs:
        fit = inputs.fits[name]
        totals = {"total": fit["params"], "trainable": fit["trainable_params"], "non_trainable": fit["params"] - fit["trainable_params"]}
        sections += ["", f"### {name} layers", "", layer_table(fit["layers"], totals)]
    sections += ["", *environment_section(inputs.records), ""]
    return "\n".join(sections)
