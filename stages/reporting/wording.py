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
from stages.reporting.claims import Claim, OverfitFacts, Run, spread
from stages.reporting.decide import BETTER_WHEN_TRAINED, INCONCLUSIVE, LESS_RELIABLE, MEASURES_DISAGREE, Comparison, Failures, has_failed
from stages.reporting.overfit import Sign
from stages.reporting.power import Outlook
from stages.reporting.results import Inputs, Results
from stages.reporting.stats import COMBINED, FAILURE_TESTS, McNemar, format_p
from stages.reporting.summary import percent


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
    """The verdict rules, from the params: the one description (report and docs/statistics.md)."""
    families = (
        "each claim's tests form their own families (superiority, equivalence, failure rates)"
        if rules.families == "per_claim"
        else "all claims' tests of one kind form one family"
    )
    alpha = f"{rules.significance_level:g}"
    return (
        f"**Failed runs** (test accuracy at most {100 * rules.chance_accuracy:g}%; chance is 10%) are their own outcome: each side's count with "
        f"its exact Clopper-Pearson interval, the two rates compared by {FAILURE_TESTS[rules.failure_test]}; a failed run's numbers are never "
        "averaged in. **Among the runs that trained**, Welch's t-test across seeds (the exact permutation test where neither side has spread, "
        f"its smallest possible p printed), its 95% interval kept inside the measure's scale. Every p is adjusted with Holm's method at {alpha} "
        f"({families}). A comparison is **ahead** when the effect in the claim's direction is at least the minimum effect "
        f"({100 * rules.min_accuracy_difference:g} points of test accuracy; {rules.min_loss_difference:g} of test loss in `compare`; for claim 4, "
        f"{100 * rules.min_convergence_difference:g} points of mean validation accuracy and {rules.min_train_loss_difference:g} of mean training "
        f"loss over epochs 1-{rules.convergence_window}) and its Holm p is below {alpha}; **behind** when the opposite effect passes that rule; "
        "**within the minimum** when the equivalence test (two one-sided Welch tests against plus and minus the minimum effect, Holm-adjusted) "
        "passes. **The verdict**: where the claimed side is shown to fail less often, supported (inconclusive if behind); where it is shown to "
        f'fail more often, "{LESS_RELIABLE}" if ahead, else not supported; otherwise ahead is supported ("{BETTER_WHEN_TRAINED}" where a larger '
        "share of its runs failed, not shown to differ: not shown to be as reliable), behind or within the minimum not supported "
        "(inconclusive if within the minimum with a smaller share of failed runs), else **inconclusive**, with outlooks: the simulated "
        "chances that this whole rule says supported and not supported if the true effect were the one observed, and if it were zero, with "
        "the trained runs there are, and the seeds per model the verdict "
        f"that effect should lead to needs to reach {rules.power_target:g} (searched up to {rules.power_max_seeds}; {rules.simulations:,} "
        "simulated experiments per count; at a true effect equal to the minimum no number of seeds passes 0.5). A claim of several parts or "
        f'comparisons is not supported if one is, supported if all are, else its weakest qualified "supported", else inconclusive. '
        f"**Overfitting**: from the lowest {rules.overfit_window}-epoch stretch of the validation loss to the last epoch, the validation loss's "
        f"least-squares slope is positive (one-sided p below {rules.overfit_significance:g}) while the training loss's slope is negative; each "
        "run's p is calibrated on its own noise (the share of its flat-tail simulations whose rule gives a p as small; the rule's false-alarm "
        f"rate is printed beside it) and the seeds' calibrated p-values are combined by {COMBINED[rules.combine_seeds]}: it overfits when the "
        f"combined p is below {alpha}; it does not when a one-sided t-test shows the seeds' mean slope below {rules.overfit_slope_bound:g} per "
        f'epoch; else inconclusive. **Claim 4** is decided on both measures: supported or not supported when they agree, "{MEASURES_DISAGREE}" '
        "when one says supported and the other not supported, else inconclusive. **Claim 3** has three parts: fails in most runs (exact "
        f"binomial test against one half, one-sided, at {alpha}), the worst, and a local minimum, supported unless some step along the negative "
        f"gradient at the main run's final weights lowers the training loss by more than {rules.landscape_tolerance:g} (the evaluate stage's landscape)."
    )


def _count(failed: int, runs: int) -> str:
    return f"{failed}/{runs}"


def failures_text(failures: Failures, first: str, second: str) -> str:
    """Both sides' failed runs with their exact intervals and the test of the rates, or that none failed."""
    if failures.better == 0 and failures.worse == 0:
        return f"no failed run ({first} {_count(0, failures.better_runs)}, {second} {_count(0, failures.worse_runs)})"
    low1, high1 = failures.better_interval
    low2, high2 = failures.worse_interval
    counts = (
        f"failed runs {first} {_count(failures.better, failures.better_runs)} ({100 * low1:.0f}-{100 * high1:.0f}%), "
        f"{second} {_count(failures.worse, failures.worse_runs)} ({100 * low2:.0f}-{100 * high2:.0f}%)"
    )
    if math.isnan(failures.p_value):
        return f"{counts}, {failures.test}"
    return f"{counts}, {failures.test} p = {format_p(failures.p_value)}, Holm {format_p(failures.p_holm)}: {first} {failures.outcome}"


def outlook_text(item: Outlook, unit: str) -> str:
    at = "zero" if item.effect == 0 else f"the observed {_effect(item.effect, unit)}"
    needed = (
        f"{item.seeds_needed} seeds per model would make {item.verdict} {item.target:g} likely"
        if item.seeds_needed
        else f"{item.verdict} does not reach {item.target:g} within {item.most} seeds"
    )
    return f"at a true effect of {at}, with {_seeds(item.seeds)}: supported {item.supported:.2f}, not supported {item.not_supported:.2f}; {needed}"


def comparison_text(comparison: Comparison) -> str:
    """One comparison in words: failures, the trained runs' effect, interval, test, raw and Holm p, its outlooks."""
    unit = comparison.measure.unit
    head = f"{comparison.better} vs {comparison.worse}, {comparison.measure.name}: "
    parts = [failures_text(comparison.failures, comparison.better, comparison.worse)]
    if math.isnan(comparison.p_value):
        parts.append(f"among trained runs, {comparison.test.replace('seeds', 'trained runs on a side')}")
    else:
        low, high = comparison.interval
        interval = "" if math.isnan(low) else f", 95% interval {_effect(low, unit)} to {_effect(high, unit)}".replace(" points to", " to")
        test = comparison.test
        if comparison.smallest_p > 0:
            test += f" (smallest p possible with these seeds: {format_p(comparison.smallest_p)})"
        trained = f"{len(comparison.trained_better.values)} and {len(comparison.trained_worse.values)} trained runs"
        text = (
            f"among {trained} {_effect(comparison.difference, unit)}{interval} in the claim's favour; {test} p = {format_p(comparison.p_value)}, "
            f"Holm {format_p(comparison.p_holm)}"
        )
        if not math.isnan(comparison.equivalence_p):
            text += f"; equivalence within ±{_minimum(comparison)} (TOST) Holm p = {format_p(comparison.equivalence_p_holm)}"
        parts.append(f"{text}: {comparison.outcome}")
    if comparison.verdict == INCONCLUSIVE:
        parts += [outlook_text(item, unit) for item in comparison.outlooks if not math.isnan(item.supported)]
    return head + "; ".join(parts) + f": **{comparison.verdict}**"


def _mcnemar(first: str, second: str, test: McNemar) -> str:
    return f"main seed, McNemar: {test.only_first} images only {first} gets right, {test.only_second} only {second}, exact p = {format_p(test.p_value)}"


def _signs(signs: Sequence[Sign]) -> str:
    return ", ".join(
        f"from epoch {sign.validation.first_epoch} {sign.validation.slope:+.5f}/epoch (p {format_p(sign.validation.p_rising)}, "
        f"train {sign.training.slope:+.5f}/epoch): {'fires' if sign.fires else 'does not fire'}, false alarms {sign.false_alarm:.2f}"
        for sign in signs
    )


def _overfitting(item: OverfitFacts, claimed: bool, rules: ReportParams) -> str:
    fired = sum(sign.fires for sign in item.signs)
    alarms = [sign.false_alarm for sign in item.signs if not math.isnan(sign.false_alarm)]
    alarm = f"{min(alarms):.2f}-{max(alarms):.2f}" if alarms else "-"
    calibrated = ", ".join(format_p(sign.calibrated_p) for sign in item.signs)
    slope = f"{item.slope.mean:+.5f} ± {_sd(item.slope.sd, digits=5)}" if item.slope.values else "-"
    what = "it overfits" if claimed else "no overfitting"
    return (
        f"{item.model}'s {len(item.signs)} trained runs (validation-loss slope after its lowest stretch, per seed: {_signs(item.signs)}); the rule "
        f"fires at {fired} of {len(item.signs)} seeds, false-alarm rate on these runs' own noise {alarm}; calibrated p per seed {calibrated}, "
        f"combined ({COMBINED[rules.combine_seeds]}) p = {format_p(item.combined_p)}; mean slope {slope} per epoch, below "
        f"{rules.overfit_slope_bound:g} one-sided p = {format_p(item.below_bound_p)}; {what}: {item.verdict}"
    )


def claim_evidence(claim: Claim, rules: ReportParams) -> str:
    if claim.missing:
        return f"{', '.join(claim.missing)} has no runs"
    described = "; ".join(comparison_text(item) for item in claim.comparisons)
    rule = claim.spec.rule
    if rule == "overfits":
        gap = claim.overfitting.gap
        return f"{_overfitting(claim.overfitting, True, rules)}; supporting: test loss minus inference-mode train loss {gap.mean:.4f} ± {_sd(gap.sd, digits=4)}"
    if rule == "better":
        return described + "; " + "; ".join(_mcnemar(*item) for item in claim.mcnemar)
    if rule == "stuck":
        stuck, (most, worst, minimum) = claim.stuck, claim.parts
        prior = "" if math.isnan(stuck.prior_loss) else f" against {stuck.prior_loss:.4f} for predicting the class frequencies"
        runs = len(stuck.accuracy.values)
        low, high = stuck.failed_interval
        text = (
            f"**{most.name}: {most.verdict}**. {stuck.model} failed {stuck.failed} of {runs} runs ({100 * low:.0f}-{100 * high:.0f}%), test accuracy "
            f"{100 * stuck.accuracy.low:.2f}-{100 * stuck.accuracy.high:.2f}%; more than half, exact binomial p = {format_p(stuck.most_p)}; it predicts one "
            f"class for every test image at {stuck.one_class} of {runs} seeds, test loss {stuck.loss.mean:.4f}{prior}: it learned the class prior and "
            f"nothing else. **{worst.name}: {worst.verdict}**: {described}. **{minimum.name}: {minimum.verdict}**. "
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
    if rule == "agree":
        parts = "; ".join(f"{part.name}: {part.verdict}" for part in claim.parts)
        shown = "; ".join(
            f"{item.model}: mean validation accuracy over epochs 1-{rules.convergence_window} {100 * item.val_area.mean:.2f}%, mean training loss "
            f"{item.train_area.mean:.4f}, epochs to {100 * rules.convergence_accuracy:g}% " + _epochs(item.epochs_to)
            for item in claim.convergence
        )
        return f"{described}; the two measures: {parts}; shown, not deciding: {shown}"
    if rule == "best":
        most, no_overfit = claim.parts
        return f"**{most.name}: {most.verdict}**: {described}. **{no_overfit.name}: {no_overfit.verdict}**: {_overfitting(claim.overfitting, False, rules)}"
    raise ValueError(f"claim {claim.number}: no wording for rule {rule!r}")


def claims_table(claims: Sequence[Claim], rules: ReportParams) -> str:
    lines = ["| # | The notebook says | Evidence from this run | Verdict |", "|--:|---|---|---|"]
    lines += [f"| {claim.number} | {claim.spec.says} | {claim_evidence(claim, rules)} | **{claim.verdict}** |" for claim in claims]
    return "\n".join(lines) + "\n"


def seed_table(runs: Mapping[str, Sequence[Run]], rules: ReportParams) -> str:
    """Per model: over the runs that trained, mean, sd and range of test accuracy and loss and the loss
    ratio; the failed runs beside; epochs to the convergence threshold per seed."""
    lines = [
        f"| Model | Seeds | Failed runs | Test accuracy of trained runs, mean ± sd (range) | Test loss, mean ± sd (range) | Test/train loss ratio | "
        f"Epochs to {100 * rules.convergence_accuracy:g}% val. accuracy, per seed |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for name, model_runs in runs.items():
        trained = [run for run in model_runs if not has_failed(run, rules.chance_accuracy)]
        failed = [run.seed for run in model_runs if has_failed(run, rules.chance_accuracy)]
        epochs = [run.epochs_to(rules.convergence_accuracy) for run in model_runs]
        reached = [epoch for epoch in epochs if not math.isinf(epoch)]
        listed = _epochs(epochs) + ("" if len(reached) == len(epochs) else f" ({len(reached)} of {len(epochs)} reached it)")
        seeds = ", ".join(str(run.seed) for run in model_runs)
        lost = f"{len(failed)} of {len(model_runs)}" + (f" (seed{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))})" if failed else "")
        if not trained:
            lines.append(f"| {name} | {seeds} | {lost} | - | - | - | {listed} |")
            continue
        accuracy = spread(trained, lambda run: run.test_accuracy)
        loss = spread(trained, lambda run: run.test_loss)
        ratio = spread(trained, lambda run: run.loss_ratio)
        lines.append(
            f"| {name} | {seeds} | {lost} | {100 * accuracy.mean:.2f}% ± {_sd(accuracy.sd, 100)} ({100 * accuracy.low:.2f}-{100 * accuracy.high:.2f}) | "
            f"{loss.mean:.4f} ± {_sd(loss.sd, digits=4)} ({loss.low:.4f}-{loss.high:.4f}) | {ratio.mean:.2f} ± {_sd(ratio.sd)} | {listed} |"
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
        "They are left out of the means and spreads above and counted as failures: the claims compare failure rates on their own."
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
        (2, [named.better.model, *named.better.than], "val_accuracy", VALIDATION_ACCURACY),
        (4, [named.faster_convergence.model, *named.faster_convergence.than], "val_accuracy", VALIDATION_ACCURACY),
        (4, [named.faster_convergence.model, *named.faster_convergence.than], "loss", "training loss (dropout on)"),
        (ZOOMED_CLAIM, [named.best, *(name for name in models if name not in (named.best, named.stuck))], "val_accuracy", VALIDATION_ACCURACY),
        (6, [named.best_optimizer.model, *named.best_optimizer.than], "val_accuracy", VALIDATION_ACCURACY),
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
        f"| Model | Test accuracy, main run (seed {inputs.params.train.seed}) | its 95% interval | Trained runs: mean ± sd (n) | Failed runs |",
        "|---|--:|---|--:|---|",
    ]
    for name, model_runs in inputs.runs.items():
        accuracy, failed = found.accuracy[name], found.at_chance[name]
        main = intervals[name] if name in inputs.specs else None
        shown = f"**{percent(main.accuracy)}** | {percent(main.low)} - {percent(main.high)}" if main else "(ablation) | "
        chance = f"{len(failed)} of {len(model_runs)}" + (f" (seed{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed))})" if failed else "")
        mean = f"{100 * accuracy.mean:.2f}% ± {_sd(accuracy.sd, 100)} ({len(accuracy.values)})" if accuracy.values else "none trained"
        lines.append(f"| {name} | {shown} | {mean} | {chance} |")
    best = intervals[found.best]
    # How far ahead across seeds, and how sure: the claimed best's closest comparison in the claim that decides it.
    decided = next(claim for claim in found.claims if claim.number == ZOOMED_CLAIM)
    ahead = [item for item in decided.comparisons if item.better == found.best and item.measure.unit == "points" and not math.isnan(item.difference)]
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
        f"{percent(inputs.rules.chance_accuracy)} test accuracy (chance is 10%): it is counted as a failure, not averaged in.",
        "",
        f"![Validation accuracy per epoch of every run of the four models]({overview})",
        "",
        "The notebook's six claims, each decided across seeds by the rules in `params.yaml: report` ([the evidence](#the-claims-evidence)):",
        "",
        *[f"{claim.number}. {claim.spec.says} **{claim.verdict}**" for claim in found.claims],
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
        f"shown where two models are compared. Each claim's numbers are also in [`{claims_file}`]({claims_file}). In the figures "
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
