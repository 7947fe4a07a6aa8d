"""The claims: each declared rule flips its verdict when the numbers do; a failed run is its own
outcome; seeds are combined, not counted; decisions return facts and verdicts, wording.py says them."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from stages.reporting import claims, decide, observations, results, summary, wording
from stages.reporting.claims import Landscape, Run
from stages.reporting.decide import (
    BETTER_WHEN_TRAINED,
    FEWER,
    LESS_RELIABLE,
    MEASURES_DISAGREE,
    MORE,
    NO_FAILURES,
    NO_TEST,
    NOT_EVALUATED,
    UNSHOWN,
)
from stages.reporting.power import AHEAD, BEHIND, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, UNDECIDED, WITHIN
from stages.reporting.stats import holm
from tests.conftest import REPORT_RULES as RULES

IMAGES = 10_000
MODELS = ["model1", "model2", "model3", "model4"]
SEEDS = range(5)
FLAT_MINIMUM = Landscape(10_000, 2.3004, 0.001, ((0.001, 2.3004), (0.01, 2.3004), (0.1, 2.30405), (1.0, 2.7)))
DESCENT = Landscape(10_000, 2.3004, 0.009, ((0.001, 2.300427), (0.01, 2.300351), (0.1, 2.300347), (1.0, 2.7)))


def run(seed: int, accuracy: float, first_epoch: float = 0.97, overfits: bool = False, one_class: bool = False, first_loss: float = 0.3) -> Run:
    """A run of 20 epochs: validation accuracy `first_epoch` after epoch 1, then 0.99; validation loss
    that rises 40% from its minimum at epoch 6 by the end when `overfits`, falling otherwise; a little
    epoch-to-epoch noise of the seed's own, so that trends have residuals and seeds differ."""
    noise = np.random.default_rng(7 + seed).normal(0, 0.0005, 20)
    correct = np.zeros(IMAGES, dtype=bool)
    correct[: round(accuracy * IMAGES)] = True
    val_accuracy = (first_epoch, *([0.99] * 19))
    shape = [0.05 * (1 + 0.4 * max(0, epoch - 5) / 14) if overfits else 0.05 * (1 - epoch / 40) for epoch in range(20)]
    val_loss = tuple(float(value + step) for value, step in zip(shape, noise, strict=True))
    loss = tuple(first_loss / (epoch + 1) for epoch in range(20))
    return Run(seed, accuracy, 0.03, 0.01, val_accuracy, correct, val_loss, loss, 0.004, 1.0 if one_class else 0.2)


def notebook_like() -> dict[str, list[Run]]:
    """Five seeds each, shaped like the notebook's story, with clear effects everywhere."""
    return {
        "model1": [run(seed, 0.9933 + seed / 1e4 * (-1) ** seed, overfits=True) for seed in SEEDS],
        "model2": [run(seed, 0.9776 + seed / 5e3 * (-1) ** seed, 0.4 + seed / 50) for seed in SEEDS],
        "model3": [run(seed, 0.1135, 0.11, one_class=True) for seed in SEEDS],
        "model4": [run(seed, 0.9960 + seed / 1e4 * (-1) ** seed, 0.982, first_loss=0.2 + seed / 100) for seed in SEEDS],
        "model4_glorot": [run(seed, 0.9945 + seed / 1e4, 0.70 + seed / 100, first_loss=0.4 + seed / 100) for seed in SEEDS],
        "model2_adam": [run(seed, 0.9890 + seed / 1e4 * (-1) ** seed, 0.9) for seed in SEEDS],
    }


def decided(runs: dict[str, list[Run]], rules=RULES, landscape: Landscape | None = FLAT_MINIMUM) -> list[claims.Claim]:
    return claims.evaluate_claims(runs, rules, MODELS, landscapes={"model3": landscape} if landscape else {})


def verdicts(runs: dict[str, list[Run]], rules=RULES, landscape: Landscape | None = FLAT_MINIMUM) -> dict[int, str]:
    return {claim.number: claim.verdict for claim in decided(runs, rules, landscape)}


def test_clear_effects_support_every_claim() -> None:
    assert verdicts(notebook_like()) == {1: SUPPORTED, 2: SUPPORTED, 3: SUPPORTED, 4: SUPPORTED, 5: SUPPORTED, 6: SUPPORTED}


def test_each_claim_is_declared_once_and_read_from_there() -> None:
    assert [spec.number for spec in claims.CLAIMS] == [1, 2, 3, 4, 5, 6]
    claim_list = decided(notebook_like())
    for claim, spec in zip(claim_list, claims.CLAIMS, strict=True):
        assert claim.spec is spec and spec.rule in claims.RULES
        assert f"| {spec.number} | {spec.says} |" in wording.claims_table([claim], RULES)
        assert {item.measure.name for item in claim.comparisons} == {claims.measures(RULES)[key].name for key in spec.measures}


def test_a_run_that_never_trained_is_its_own_outcome_not_averaged_in() -> None:
    """The audit's case: Adam learns at seeds 0-3 and stays at chance at seed 4; SGD never learns."""
    runs = notebook_like()
    runs["model2"] = [run(seed, value) for seed, value in zip(SEEDS, (0.9776, 0.9767, 0.9795, 0.9803, 0.9780), strict=True)]
    runs["model2_adam"] = [run(seed, value) for seed, value in zip(SEEDS, (0.9884, 0.9866, 0.9878, 0.9867, 0.1135), strict=True)]
    claim = decided(runs)[5]
    adadelta, sgd = claim.comparisons
    # Against Adadelta: 4 trained runs against 5, +0.90 points; failures 1/5 against 0/5, Boschloo p 0.588.
    assert (adadelta.failures.better, adadelta.failures.worse) == (1, 0) and len(adadelta.trained_better.values) == 4
    assert adadelta.difference == pytest.approx(0.98738 - 0.97842, abs=1e-5) and adadelta.outcome == AHEAD
    assert adadelta.failures.p_value == pytest.approx(0.5883, abs=1e-4) and adadelta.failures.outcome == UNSHOWN
    assert adadelta.verdict == BETTER_WHEN_TRAINED
    # Against SGD: no trained SGD run, so no test of the metric; failures 1/5 against 5/5, Boschloo p 0.0137 (Fisher's 0.048).
    assert sgd.outcome == NO_TEST and sgd.failures.p_value == pytest.approx(0.01373, abs=1e-5) and sgd.failures.outcome == FEWER
    assert sgd.verdict == SUPPORTED and claim.verdict == BETTER_WHEN_TRAINED
    # No interval leaves the scale and no outlook simulates the failed run.
    for item in claim.comparisons:
        assert math.isnan(item.interval[0]) or -1 <= item.interval[0] <= item.interval[1] <= 1
    text = wording.claim_evidence(claim, RULES)
    assert "failed runs model2_adam 1/5 (1-72%), model2 0/5 (0-52%), Boschloo's exact test p = 0.588" in text
    assert "among 4 and 5 trained runs +0.90 points" in text
    with_fisher = decided(runs, RULES.model_copy(update={"failure_test": "fisher"}))[5].comparisons[1]
    assert with_fisher.failures.p_value == pytest.approx(0.04762, abs=1e-5) and with_fisher.failures.test == "Fisher's exact test"


@pytest.mark.parametrize(
    ("outcome", "failures", "balance", "verdict"),
    [
        (AHEAD, NO_FAILURES, 0, SUPPORTED),
        (BEHIND, NO_FAILURES, 0, NOT_SUPPORTED),
        (WITHIN, NO_FAILURES, 0, NOT_SUPPORTED),
        (UNDECIDED, NO_FAILURES, 0, INCONCLUSIVE),
        (NO_TEST, NO_FAILURES, 0, INCONCLUSIVE),
        (AHEAD, MORE, 1, LESS_RELIABLE),
        (WITHIN, MORE, 1, NOT_SUPPORTED),
        (UNDECIDED, MORE, 1, NOT_SUPPORTED),
        (NO_TEST, MORE, 1, NOT_SUPPORTED),
        (AHEAD, FEWER, -1, SUPPORTED),
        (NO_TEST, FEWER, -1, SUPPORTED),
        (WITHIN, FEWER, -1, SUPPORTED),
        (BEHIND, FEWER, -1, INCONCLUSIVE),
        (AHEAD, UNSHOWN, 1, BETTER_WHEN_TRAINED),
        (AHEAD, UNSHOWN, 0, SUPPORTED),
        (AHEAD, UNSHOWN, -1, SUPPORTED),
        (WITHIN, UNSHOWN, -1, INCONCLUSIVE),
        (WITHIN, UNSHOWN, 0, NOT_SUPPORTED),
        (WITHIN, UNSHOWN, 1, NOT_SUPPORTED),
        (BEHIND, UNSHOWN, -1, NOT_SUPPORTED),
        (NO_TEST, UNSHOWN, 1, INCONCLUSIVE),
    ],
)
def test_the_decision_table(outcome: str, failures: str, balance: int, verdict: str) -> None:
    assert decide.weigh(outcome, failures, balance) == verdict
    # Every verdict the table gives is worded in the rules the report prints.
    if verdict in (BETTER_WHEN_TRAINED, LESS_RELIABLE):
        assert verdict in wording.rules_text(RULES)


def test_claims_combine_their_parts_by_the_declared_rule() -> None:
    assert decide.combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert decide.combine([SUPPORTED, BETTER_WHEN_TRAINED]) == BETTER_WHEN_TRAINED
    assert decide.combine([LESS_RELIABLE, BETTER_WHEN_TRAINED, SUPPORTED]) == LESS_RELIABLE
    assert decide.combine([SUPPORTED, INCONCLUSIVE]) == INCONCLUSIVE
    assert decide.combine([INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED]) == NOT_SUPPORTED
    assert decide.combine([]) == INCONCLUSIVE
    # Claim 4's rule as declared: "measures disagree" only when one is supported and the other not supported.
    assert decide.agree([SUPPORTED, NOT_SUPPORTED]) == MEASURES_DISAGREE
    assert decide.agree([INCONCLUSIVE, NOT_SUPPORTED]) == INCONCLUSIVE
    assert decide.agree([NOT_SUPPORTED, NOT_SUPPORTED]) == NOT_SUPPORTED


def test_claim_5_inconclusive_with_outlooks_at_the_observed_effect_and_at_zero() -> None:
    runs = notebook_like()
    # Model 4 a little ahead of Model 1 on average, the seeds overlapping.
    runs["model4"] = [run(seed, value, 0.982) for seed, value in zip(SEEDS, (0.9925, 0.9975, 0.9940, 0.9950, 0.9930), strict=True)]
    claim = decided(runs)[4]
    comparison = claim.comparisons[0]
    assert comparison.worse == "model1" and comparison.verdict == INCONCLUSIVE and claim.verdict == INCONCLUSIVE
    observed, zero = comparison.outlooks
    assert observed.effect == comparison.difference and zero.effect == 0.0 and observed.seeds == zero.seeds == 5
    assert 0 <= observed.supported <= 1 and 0 <= zero.not_supported <= 1 and zero.verdict == NOT_SUPPORTED
    text = wording.claim_evidence(claim, RULES)
    assert f"at a true effect of zero, with 5 seeds: supported {zero.supported:.2f}, not supported {zero.not_supported:.2f}" in text
    assert "at a true effect of the observed +" in text
    # Equal to Model 1 within a hundredth of a point at every seed, tight spread: equivalence shown, not supported, no outlook.
    runs["model1"] = [run(seed, 0.99600 + 0.00001 * seed, overfits=True) for seed in SEEDS]
    runs["model4"] = [run(seed, 0.99601 + 0.00001 * seed, 0.98) for seed in SEEDS]
    comparison = decided(runs)[4].comparisons[0]
    assert comparison.outcome == WITHIN and comparison.verdict == NOT_SUPPORTED and comparison.outlooks == ()
    runs["model4"] = [run(seed, 0.9900 + 0.0001 * seed, 0.98) for seed in SEEDS]
    assert decided(runs)[4].comparisons[0].outcome == BEHIND


def test_claim_2_flips_with_the_numbers() -> None:
    runs = notebook_like()
    runs["model2"], runs["model3"] = runs["model3"], runs["model2"]
    claim = decided(runs)[1]
    assert claim.verdict == NOT_SUPPORTED and claim.comparisons[0].failures.outcome == MORE


def test_claim_4_needs_both_measures_and_says_when_they_disagree() -> None:
    runs = notebook_like()
    claim = decided(runs)[3]
    assert [part.name for part in claim.parts] == ["mean validation accuracy over epochs 1-3", "mean training loss over epochs 1-3"]
    assert [part.verdict for part in claim.parts] == [SUPPORTED, SUPPORTED]
    # Glorot's training loss lower while its validation accuracy lags: the measures point opposite ways.
    runs["model4_glorot"] = [run(seed, 0.9945, 0.70 + seed / 100, first_loss=0.1 + seed / 1000) for seed in SEEDS]
    claim = decided(runs)[3]
    assert claim.verdict == MEASURES_DISAGREE and [part.verdict for part in claim.parts] == [SUPPORTED, NOT_SUPPORTED]
    # One measure undecided (validation accuracies overlap), the other against: inconclusive, as declared.
    runs["model4_glorot"] = [run(seed, 0.9945, 0.88 + (seed - 2) / 20, first_loss=0.1 + seed / 1000) for seed in SEEDS]
    runs["model4"] = [run(seed, 0.9960, 0.88 - (seed - 2) / 20, first_loss=0.2 + seed / 100) for seed in SEEDS]
    claim = decided(runs)[3]
    assert [part.verdict for part in claim.parts] == [INCONCLUSIVE, NOT_SUPPORTED] and claim.verdict == INCONCLUSIVE
    # Identical values at every seed on both sides: no t-test; the exact permutation test's best p is 2/252.
    runs = notebook_like()
    runs["model4"] = [run(seed, 0.9960, 0.982, first_loss=0.2) for seed in SEEDS]
    runs["model4_glorot"] = [run(seed, 0.9945, 0.70, first_loss=0.4) for seed in SEEDS]
    claim = decided(runs)[3]
    assert {item.test for item in claim.comparisons} == {"exact permutation test"}
    assert claim.comparisons[0].smallest_p == pytest.approx(2 / 252) and claim.verdict == SUPPORTED


def test_claim_1_combines_the_seeds_calibrated_p_values() -> None:
    runs = notebook_like()
    claim = decided(runs)[0]
    facts = claim.overfitting
    assert claim.verdict == SUPPORTED and facts.seeds == (0, 1, 2, 3, 4)
    assert all(0 < sign.calibrated_p <= 1 and 0 <= sign.false_alarm <= 1 for sign in facts.signs)
    assert facts.combined_p < RULES.significance_level
    # Two seeds overfit, three show nothing: "every seed" would say inconclusive; the combined p decides by the evidence.
    runs["model1"] = [run(seed, 0.9931, overfits=seed < 2) for seed in SEEDS]
    facts = decided(runs)[0].overfitting
    assert facts.combined_p == pytest.approx(float(stats.combine_pvalues([sign.calibrated_p for sign in facts.signs], method="stouffer").pvalue))
    # Falling validation loss at every seed: the mean slope is shown below the bound, so it does not overfit.
    runs["model1"] = [run(seed, 0.9931) for seed in SEEDS]
    claim = decided(runs)[0]
    assert claim.verdict == NOT_SUPPORTED and claim.overfitting.below_bound_p < 0.05
    assert "combined (Stouffer's method) p = " in wording.claim_evidence(claim, RULES)
    # One noisy last epoch 40% above the minimum is not a trend.
    spike = run(0, 0.9931)
    spiked = dataclasses.replace(spike, val_loss=(*spike.val_loss[:-1], min(spike.val_loss) * 1.4))
    runs["model1"] = [spiked, *(run(seed, 0.9931) for seed in range(1, 5))]
    assert not decided(runs)[0].overfitting.signs[0].fires


def test_no_overfitting_needs_the_bound_not_the_absence_of_the_sign() -> None:
    runs = notebook_like()
    assert decided(runs)[4].parts[1].verdict == SUPPORTED
    # Flat tails with noise: the sign fires nowhere, but the slope is not shown below the bound either.
    flat = []
    for seed in SEEDS:
        item = run(seed, 0.9960, 0.982)
        noise = np.random.default_rng(100 + seed).normal(0, 0.004, 20)
        flat.append(dataclasses.replace(item, val_loss=tuple(float(0.03 + value) for value in noise)))
    runs["model4"] = flat
    claim = decided(runs)[4]
    part, facts = claim.parts[1], claim.overfitting
    assert facts.combined_p >= 0.05 and facts.below_bound_p >= 0.05
    assert part.name == "no overfitting" and part.verdict == INCONCLUSIVE


def test_claim_3_has_three_parts_and_the_landscape_decides_the_minimum() -> None:
    claim = claims.evaluate_claims(notebook_like(), RULES, MODELS, prior_loss=2.3010, landscapes={"model3": DESCENT})[2]
    assert [(part.name, part.verdict) for part in claim.parts] == [
        ("fails in most runs", SUPPORTED),
        ("the worst", SUPPORTED),
        ("a local minimum", NOT_SUPPORTED),
    ]
    # 5 of 5 failed: exact binomial p = 1/32 that it fails in more than half; Clopper-Pearson 47.8-100%.
    assert claim.stuck.most_p == pytest.approx(1 / 32) and claim.stuck.failed_interval[0] == pytest.approx(0.4782, abs=1e-4)
    assert claim.verdict == NOT_SUPPORTED and claim.stuck.one_class == 5 and claim.stuck.prior_loss == 2.3010
    text = wording.claim_evidence(claim, RULES)
    assert "learned the class prior" in text and "a descent direction" in text and "2.3010" in text
    assert verdicts(notebook_like(), RULES.model_copy(update={"landscape_tolerance": 1e-3}), DESCENT)[3] == SUPPORTED
    missing = decided(notebook_like(), landscape=None)[2]
    assert missing.parts[2].verdict == NOT_EVALUATED and missing.verdict == INCONCLUSIVE
    runs = notebook_like()
    runs["model3"] = [run(seed, 0.90 + seed / 1000) for seed in SEEDS]
    assert verdicts(runs)[3] == NOT_SUPPORTED
    # 3 of 5 at chance: not shown to fail in most runs (p 0.5).
    runs["model3"] = [run(seed, 0.1135 if seed < 3 else 0.9) for seed in SEEDS]
    assert decided(runs)[2].parts[0].verdict == INCONCLUSIVE


def test_the_holm_families_are_the_declared_ones() -> None:
    per_claim = decided(notebook_like())
    # Claim 5's three superiority tests: its weakest faces alpha / 1 at its rank among three, not among every claim's tests.
    five = per_claim[4].comparisons
    ranked = sorted(item.p_value for item in five if not math.isnan(item.p_value))
    for item in five:
        if not math.isnan(item.p_value):
            assert item.level == RULES.significance_level / (len(ranked) - ranked.index(item.p_value))
    together = decided(notebook_like(), RULES.model_copy(update={"families": "all_claims"}))
    pairs = [(a, b) for first, second in zip(per_claim, together, strict=True) for a, b in zip(first.comparisons, second.comparisons, strict=True)]
    assert all(b.p_holm >= a.p_holm for a, b in pairs if not math.isnan(a.p_holm))
    assert any(b.p_holm > a.p_holm for a, b in pairs if not math.isnan(a.p_holm))
    # A stricter family-wise level turns a borderline claim inconclusive.
    runs = notebook_like()
    runs["model2_adam"] = [run(seed, 0.9800 + 0.0008 * seed, 0.9) for seed in SEEDS]
    assert verdicts(runs)[6] == SUPPORTED
    assert verdicts(runs, RULES.model_copy(update={"significance_level": 0.0001}))[6] == INCONCLUSIVE


def test_holm_passes_ties_together_at_the_stricter_level() -> None:
    # Two tied p-values in a family of three: Holm compares the first with 0.05/3; only if it passes is its twin
    # compared with 0.05/2. So a tie passes together or not at all, at the first one's level.
    assert decide.holm_levels([0.01, 0.01, 0.5], 0.05) == [0.05 / 3, 0.05 / 3, 0.05]
    assert holm([0.01, 0.01, 0.5])[:2] == [pytest.approx(0.03), pytest.approx(0.03)]  # both pass
    # At 0.02 each the first fails 0.05/3 and Holm stops: neither passes, though 0.02 < 0.05/2. The shared level
    # says so; giving the second of a tie the next rank's level would call it significant.
    assert decide.holm_levels([0.02, 0.02, 0.5], 0.05)[:2] == [0.05 / 3, 0.05 / 3]
    assert holm([0.02, 0.02, 0.5])[:2] == [pytest.approx(0.06), pytest.approx(0.06)]


def test_a_model_without_runs_leaves_every_claim_not_evaluated() -> None:
    runs = notebook_like()
    runs.pop("model4_glorot")
    claim_list = decided(runs)
    assert {claim.verdict for claim in claim_list} == {NOT_EVALUATED}
    assert wording.claim_evidence(claim_list[0], RULES) == "model4_glorot has no runs"


def results_of(claim_list: list[claims.Claim]) -> results.Results:
    return results.Results((), {}, {}, (), (), tuple(claim_list), (), {}, {}, "model4", (), 0, math.nan)


def test_table_and_claims_json_carry_the_numbers() -> None:
    claim_list = decided(notebook_like())
    table = wording.claims_table(claim_list, RULES)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(rows) == 6
    assert "Boschloo's exact test p = " in rows[1] and "McNemar: " in rows[1] and "p = < 1e-300" in rows[1]
    metrics = results.claims_json(results_of(claim_list))
    json.dumps(metrics, allow_nan=False)
    entry = metrics["claim5"]["comparisons"]["model4_vs_model1: test accuracy"]
    assert entry["verdict"] == SUPPORTED and entry["effect"] > 0.001 and entry["p_holm"] < 0.05 and entry["test"] == "Welch's t-test"
    assert entry["failed_runs"] == [0, 0] and entry["failure_outcome"] == NO_FAILURES and entry["outlook_at_zero"] is None
    assert metrics["claim3"]["parts"] == {"fails in most runs": SUPPORTED, "the worst": SUPPORTED, "a local minimum": SUPPORTED}
    assert metrics["claim3"]["failed_runs"]["failed"] == 5
    assert set(metrics["claim1"]["overfitting"]["seeds"]) == {f"seed_{seed}" for seed in SEEDS}
    assert metrics["claim1"]["overfitting"]["combined_p"] < 0.05


def test_runs_at_chance_are_named_by_seed_in_the_report_and_counted_in_the_summary() -> None:
    runs = notebook_like()
    runs["model2_adam"][1] = run(1, 0.1135, 0.11, one_class=True)  # learns at the other seeds, stuck at seed 1
    found = observations.runs_at_chance(runs, RULES)
    assert found == {"model1": (), "model2": (), "model3": (0, 1, 2, 3, 4), "model4": (), "model4_glorot": (), "model2_adam": (1,)}
    seeds = {name: len(model_runs) for name, model_runs in runs.items()}
    text = wording.at_chance_text(found, seeds, RULES)
    assert "model3 at every seed" in text and "model2_adam at seed 1 (1 of 5)" in text and "model1" not in text
    table = wording.seed_table(runs, RULES)
    adam = next(line for line in table.splitlines() if line.startswith("| model2_adam"))
    # The trained runs' mean (seeds 0, 2, 3, 4), the failure beside it.
    trained = [item.test_accuracy for item in runs["model2_adam"] if item.seed != 1]
    assert f"| 1 of 5 (seed 1) | {100 * np.mean(trained):.2f}% ± " in adam
    assert "| model3 | 0, 1, 2, 3, 4 | 5 of 5 (seeds 0, 1, 2, 3, 4) | - |" in table
    spreads = {name: claims.spread(model_runs, lambda item: item.test_accuracy) for name, model_runs in runs.items()}
    metrics = summary.metrics_by_model([], spreads, spreads, found)
    assert metrics["model3"]["runs_at_chance"] == 5 and metrics["model2_adam"]["runs_at_chance"] == 1 and metrics["model1"]["runs_at_chance"] == 0
    learned = {name: model_runs for name, model_runs in runs.items() if name not in {"model3", "model2_adam"}}
    none = observations.runs_at_chance(learned, RULES)
    assert wording.at_chance_text(none, seeds, RULES).startswith("No run ended at chance (test accuracy at most 20.00%)")


def test_every_committed_verdict_is_what_its_declared_rule_gives() -> None:
    """reports/claims.json, re-decided from its own parts: each comparison's verdict is the decision table's
    for its trained-run and failure outcomes, each claim's the combination its declared rule names."""
    committed = json.loads((Path(__file__).resolve().parents[1] / "reports" / "claims.json").read_text())
    for spec in claims.CLAIMS:
        entry = committed[f"claim{spec.number}"]
        assert entry["says"] == spec.says
        verdicts = []
        for key, item in entry.get("comparisons", {}).items():
            failed, runs = item["failed_runs"], item["runs"]
            share = failed[0] / runs[0] - failed[1] / runs[1]
            assert item["verdict"] == decide.weigh(item["trained_outcome"], item["failure_outcome"], (share > 0) - (share < 0)), key
            verdicts.append(item["verdict"])
        parts = entry.get("parts", {})
        if spec.rule == "better":
            assert entry["verdict"] == decide.combine(verdicts)
        elif spec.rule == "agree":
            assert list(parts.values()) == verdicts and entry["verdict"] == decide.agree(verdicts)
        elif spec.rule in ("stuck", "best"):
            assert decide.combine(verdicts) == parts["the worst" if spec.rule == "stuck" else "the most accurate"]
            assert entry["verdict"] == decide.combine(list(parts.values()))
        else:
            assert entry["verdict"] == entry["overfitting"]["verdict"]
            overfits = entry["overfitting"]["combined_p"] < RULES.significance_level
            assert (entry["verdict"] == SUPPORTED) == overfits


def test_runs_that_all_failed_give_verdicts_and_text_not_errors() -> None:
    """A one-epoch slice: every model at chance. Nothing to average, nothing to simulate; the claims still read."""
    runs = {name: [run(seed, 0.1135, 0.11, one_class=True) for seed in SEEDS] for name in notebook_like()}
    claim_list = decided(runs)
    assert [claim.verdict for claim in claim_list][1:] == [INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE]
    assert claim_list[0].overfitting.signs == () and math.isnan(claim_list[0].overfitting.combined_p)
    table = wording.claims_table(claim_list, RULES) + wording.seed_table(runs, RULES)
    assert "no test (no difference in failures possible)" in table and "| model1 | 0, 1, 2, 3, 4 | 5 of 5 (seeds 0, 1, 2, 3, 4) | - |" in table
    json.dumps(results.claims_json(results_of(claim_list)), allow_nan=False)


def test_one_failure_test_per_pair_of_sides_whatever_the_measures() -> None:
    """Two measures of the same two models share their failed runs: one failure-rate test in the family, not two."""
    runs = notebook_like()
    rules = RULES
    measure = claims.measures(rules)
    raw = [
        decide.measure_pair("model2_adam", runs["model3"][:1] + runs["model2_adam"][1:], "model3", runs["model3"], measure[key], rules)
        for key in ("accuracy", "loss")
    ]
    decided_pair = decide.decide(raw, [0, 0], rules)
    # 1 of 5 against 5 of 5 alone in its family: Holm leaves Boschloo's 0.0137 as it is (two copies would double it).
    assert [item.failures.p_holm for item in decided_pair] == [pytest.approx(0.013731, abs=1e-6)] * 2
