"""The claims: each declared rule flips its verdict when the numbers do; decisions return facts and
verdicts, wording.py says them."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from stages.reporting import claims, observations, results, summary, wording
from stages.reporting.claims import INCONCLUSIVE, MEASURES_DISAGREE, NOT_EVALUATED, NOT_SUPPORTED, SUPPORTED, Landscape, Run
from tests.conftest import REPORT_RULES as RULES

IMAGES = 10_000
MODELS = ["model1", "model2", "model3", "model4"]
# A little epoch-to-epoch noise, so that the trend tests have residuals (the same at every seed).
NOISE = np.random.default_rng(7).normal(0, 0.0005, 20)
FLAT_MINIMUM = Landscape(10_000, 2.3004, 0.001, ((0.001, 2.3004), (0.01, 2.3004), (0.1, 2.30405), (1.0, 2.7)))
DESCENT = Landscape(10_000, 2.3004, 0.009, ((0.001, 2.300427), (0.01, 2.300351), (0.1, 2.300347), (1.0, 2.7)))


def run(seed: int, accuracy: float, first_epoch: float = 0.97, overfits: bool = False, one_class: bool = False, first_loss: float = 0.3) -> Run:
    """A run of 20 epochs: validation accuracy `first_epoch` after epoch 1, then 0.99; validation loss
    that rises 40% from its minimum at epoch 6 by the end when `overfits`, falling otherwise."""
    correct = np.zeros(IMAGES, dtype=bool)
    correct[: round(accuracy * IMAGES)] = True
    val_accuracy = (first_epoch, *([0.99] * 19))
    shape = [0.05 * (1 + 0.4 * max(0, epoch - 5) / 14) if overfits else 0.05 * (1 - epoch / 40) for epoch in range(20)]
    val_loss = tuple(float(value + noise) for value, noise in zip(shape, NOISE, strict=True))
    loss = tuple(first_loss / (epoch + 1) for epoch in range(20))
    return Run(seed, accuracy, 0.03, 0.01, val_accuracy, correct, val_loss, loss, 0.004, 1.0 if one_class else 0.2)


def notebook_like() -> dict[str, list[Run]]:
    """Three seeds each, shaped like the notebook's story, with clear effects everywhere."""
    return {
        "model1": [run(0, 0.9933, overfits=True), run(1, 0.9931, overfits=True), run(2, 0.9936, overfits=True)],
        "model2": [run(0, 0.9776, 0.4), run(1, 0.9781, 0.5), run(2, 0.9770, 0.45)],
        "model3": [run(0, 0.1135, 0.11, one_class=True), run(1, 0.1134, 0.11, one_class=True), run(2, 0.1136, 0.11, one_class=True)],
        "model4": [run(0, 0.9960, 0.982, first_loss=0.2), run(1, 0.9962, 0.983, first_loss=0.21), run(2, 0.9961, 0.981, first_loss=0.19)],
        "model4_glorot": [run(0, 0.9945, 0.70, first_loss=0.4), run(1, 0.9940, 0.71, first_loss=0.42), run(2, 0.9946, 0.69, first_loss=0.41)],
        "model2_adam": [run(0, 0.9890, 0.9), run(1, 0.9893, 0.91), run(2, 0.9888, 0.9)],
    }


def decided(runs: dict[str, list[Run]], rules=RULES, landscape: Landscape | None = FLAT_MINIMUM) -> list[claims.Claim]:
    return claims.evaluate_claims(runs, rules, MODELS, landscapes={"model3": landscape} if landscape else {})


def verdicts(runs: dict[str, list[Run]], rules=RULES, landscape: Landscape | None = FLAT_MINIMUM) -> dict[int, str]:
    return {claim.number: claim.verdict for claim in decided(runs, rules, landscape)}


def test_clear_effects_support_every_claim() -> None:
    assert verdicts(notebook_like()) == {1: SUPPORTED, 2: SUPPORTED, 3: SUPPORTED, 4: SUPPORTED, 5: SUPPORTED, 6: SUPPORTED}


def test_claim_5_inconclusive_with_its_simulated_outlook_then_not_supported_by_equivalence() -> None:
    runs = notebook_like()
    # Model 4 ahead of Model 1 on average, the seeds overlapping: inconclusive, with the rule's own chance and seeds needed.
    runs["model4"] = [run(0, 0.9925, 0.982), run(1, 0.9975, 0.983), run(2, 0.9940, 0.981)]
    claim = decided(runs)[4]
    comparison = claim.comparisons[0]
    assert claim.verdict == INCONCLUSIVE and comparison.verdict == INCONCLUSIVE
    outlook = comparison.outlook
    assert outlook.effect == RULES.power_effect * RULES.min_accuracy_difference and outlook.seeds == 3 and 0 < outlook.chance < 0.8
    assert outlook.seeds_needed is not None and outlook.seeds_needed > 3
    # Holm's level for this test: the weakest of the three superiority tests of claim 5's family members
    assert comparison.level > RULES.significance_level / 10
    text = wording.claim_evidence(claim, RULES)
    assert (
        f"chance this rule says supported at a true 0.20 points with 3 seeds: {outlook.chance:.2f}, {outlook.seeds_needed} seeds per model would reach 0.8"
        in text
    )
    # Equal to Model 1 within a hundredth of a point at every seed, tight spread: equivalence shown, not supported.
    runs["model1"] = [run(seed, 0.99600 + 0.00001 * seed, overfits=True) for seed in range(3)]
    runs["model4"] = [run(seed, 0.99601 + 0.00001 * seed, 0.98) for seed in range(3)]
    comparison = decided(runs)[4].comparisons[0]
    assert comparison.worse == "model1" and comparison.verdict == NOT_SUPPORTED and comparison.equivalence_p_holm < 0.05 and comparison.outlook is None
    # The opposite effect, significant: not supported either.
    runs["model4"] = [run(seed, 0.9900 + 0.0001 * seed, 0.98) for seed in range(3)]
    assert decided(runs)[4].comparisons[0].verdict == NOT_SUPPORTED


def test_an_effect_at_the_minimum_is_out_of_reach_for_any_number_of_seeds() -> None:
    runs = notebook_like()
    runs["model4"] = [run(0, 0.9925, 0.982), run(1, 0.9975, 0.983), run(2, 0.9940, 0.981)]
    outlook = decided(runs, RULES.model_copy(update={"power_effect": 1.0}))[4].comparisons[0].outlook
    assert outlook.chance < 0.5 and outlook.seeds_needed is None
    assert f"not reachable within {outlook.most} seeds" in wording.comparison_text(
        decided(runs, RULES.model_copy(update={"power_effect": 1.0}))[4].comparisons[0]
    )


def test_claim_2_flips_with_the_numbers() -> None:
    runs = notebook_like()
    runs["model2"], runs["model3"] = runs["model3"], runs["model2"]
    assert verdicts(runs)[2] == NOT_SUPPORTED


def test_claim_4_needs_both_measures_and_says_when_they_disagree() -> None:
    runs = notebook_like()
    claim = decided(runs)[3]
    assert [part.name for part in claim.parts] == ["mean validation accuracy over epochs 1-3", "mean training loss over epochs 1-3"]
    assert [part.verdict for part in claim.parts] == [SUPPORTED, SUPPORTED]
    # Glorot's training loss falls faster (lower) while its validation accuracy lags: the measures point opposite ways.
    runs["model4_glorot"] = [run(seed, 0.9945, 0.70 + seed / 100, first_loss=0.1 + seed / 1000) for seed in range(3)]
    claim = decided(runs)[3]
    assert claim.verdict == MEASURES_DISAGREE and [part.verdict for part in claim.parts] == [SUPPORTED, NOT_SUPPORTED]
    assert "mean training loss over epochs 1-3: not supported" in wording.claim_evidence(claim, RULES)
    # Identical values at every seed on both sides: no t-test; the exact test's best p is 0.1, so inconclusive.
    runs = notebook_like()
    runs["model4"] = [run(seed, 0.9960 + seed / 1e4, 0.982, first_loss=0.2) for seed in range(3)]
    runs["model4_glorot"] = [run(seed, 0.9945, 0.70, first_loss=0.4) for seed in range(3)]
    claim = decided(runs)[3]
    assert {item.test for item in claim.comparisons} == {"exact permutation test"} and claim.comparisons[0].smallest_p == 0.1
    assert claim.verdict == INCONCLUSIVE and "smallest p possible with these seeds: 0.1" in wording.claim_evidence(claim, RULES)
    # The epochs-to-threshold column describes; a threshold that flips it does not flip the verdict.
    assert verdicts(notebook_like(), RULES.model_copy(update={"convergence_accuracy": 0.9815}))[4] == SUPPORTED


def test_claim_1_follows_the_trend_rule_at_every_seed_with_its_false_alarm_rate() -> None:
    runs = notebook_like()
    claim = decided(runs)[0]
    assert claim.verdict == SUPPORTED and all(sign.fires for sign in claim.overfitting.signs)
    assert all(0 <= sign.false_alarm <= 1 for sign in claim.overfitting.signs) and claim.overfitting.seeds == (0, 1, 2)
    assert "false-alarm rate on these runs' own noise" in wording.claim_evidence(claim, RULES)
    runs["model1"][1] = run(1, 0.9931)  # one seed whose validation loss keeps falling
    assert verdicts(runs)[1] == INCONCLUSIVE
    runs["model1"] = [run(seed, 0.9931) for seed in range(3)]
    assert verdicts(runs)[1] == NOT_SUPPORTED
    # One noisy last epoch 40% above the minimum is not a trend: the old last-vs-minimum rule fired on it.
    spike = run(0, 0.9931)
    spiked = dataclasses.replace(spike, val_loss=(*spike.val_loss[:-1], min(spike.val_loss) * 1.4))
    runs["model1"] = [spiked, run(1, 0.9931), run(2, 0.9931)]
    assert not decided(runs)[0].overfitting.signs[0].fires


def test_claim_3_has_two_parts_and_the_landscape_decides_the_minimum() -> None:
    claim = claims.evaluate_claims(notebook_like(), RULES, MODELS, prior_loss=2.3010, landscapes={"model3": DESCENT})[2]
    assert [(part.name, part.verdict) for part in claim.parts] == [("at chance and the worst", SUPPORTED), ("a local minimum", NOT_SUPPORTED)]
    assert claim.verdict == NOT_SUPPORTED and claim.stuck.one_class == 3 and claim.stuck.prior_loss == 2.3010
    text = wording.claim_evidence(claim, RULES)
    assert "learned the class prior" in text and "a descent direction" in text and "2.3010" in text
    assert verdicts(notebook_like(), landscape=FLAT_MINIMUM)[3] == SUPPORTED
    assert verdicts(notebook_like(), RULES.model_copy(update={"landscape_tolerance": 1e-3}), DESCENT)[3] == SUPPORTED
    missing = decided(notebook_like(), landscape=None)[2]
    assert missing.parts[1].verdict == NOT_EVALUATED and missing.verdict == INCONCLUSIVE
    runs = notebook_like()
    runs["model3"] = [run(seed, 0.90 + seed / 1000) for seed in range(3)]
    assert verdicts(runs)[3] == NOT_SUPPORTED


def test_the_holm_families_are_the_declared_ones() -> None:
    comparisons = {(item.better, item.worse, item.measure.name): item for claim in decided(notebook_like()) for item in claim.comparisons}
    # model2 vs model3 backs claims 2 and 3, model4 vs model3 claims 3 and 5: each is one test; 9 tests.
    assert len(comparisons) == 9
    superiority = sorted(item.p_value for item in comparisons.values())
    for item in comparisons.values():
        assert item.p_holm >= item.p_value
        # Separate families: the weakest superiority test's level is alpha / 1 times its rank among 9 tests, not 18.
        assert item.level == RULES.significance_level / (len(superiority) - superiority.index(item.p_value))
    joint = {
        (item.better, item.worse, item.measure.name): item
        for claim in decided(notebook_like(), RULES.model_copy(update={"holm_families": "joint"}))
        for item in claim.comparisons
    }
    assert all(joint[key].p_holm >= comparisons[key].p_holm for key in comparisons)
    assert any(joint[key].p_holm > comparisons[key].p_holm for key in comparisons)
    # A stricter family-wise level turns a borderline claim inconclusive.
    runs = notebook_like()
    runs["model2_adam"] = [run(0, 0.9810, 0.9), run(1, 0.9812, 0.9), run(2, 0.9809, 0.9)]
    assert verdicts(runs)[6] == SUPPORTED
    assert verdicts(runs, RULES.model_copy(update={"significance_level": 0.0001}))[6] == INCONCLUSIVE


def test_a_model_without_runs_leaves_every_claim_not_evaluated() -> None:
    runs = notebook_like()
    runs.pop("model4_glorot")
    claim_list = decided(runs)
    assert {claim.verdict for claim in claim_list} == {NOT_EVALUATED}
    assert wording.claim_evidence(claim_list[0], RULES) == "model4_glorot has no runs"


def test_table_and_metrics_carry_the_numbers() -> None:
    claim_list = decided(notebook_like())
    table = wording.claims_table(claim_list, RULES)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(rows) == 6
    assert "Welch's t-test p = " in rows[1] and "Holm" in rows[1] and "McNemar: " in rows[1] and "p = < 1e-300" in rows[1]
    found = results.Results((), {}, {}, (), (), tuple(claim_list), (), {}, "model4", (), 0, math.nan)
    metrics = results.claims_json(found)
    json.dumps(metrics, allow_nan=False)
    entry = metrics["claim5"]["comparisons"]["model4_vs_model1: test accuracy"]
    assert entry["verdict"] == SUPPORTED and entry["effect"] > 0.001 and entry["p_holm"] < 0.05 and entry["test"] == "Welch's t-test"
    assert metrics["claim3"]["parts"] == {"at chance and the worst": SUPPORTED, "a local minimum": SUPPORTED}
    assert set(metrics["claim1"]["overfitting"]) == {"seed_0", "seed_1", "seed_2"} and metrics["claim1"]["overfitting"]["seed_0"]["fires"] is True
    assert "power" in entry and "seeds_for_target_power" in entry and "seeds_for_80_percent_power" not in entry


def test_runs_at_chance_are_named_by_seed_in_the_report_and_counted_in_the_summary() -> None:
    runs = notebook_like()
    runs["model2_adam"][1] = run(1, 0.1135, 0.11, one_class=True)  # learns at seeds 0 and 2, stuck at seed 1
    found = observations.runs_at_chance(runs, RULES)
    assert found == {"model1": (), "model2": (), "model3": (0, 1, 2), "model4": (), "model4_glorot": (), "model2_adam": (1,)}
    seeds = {name: len(model_runs) for name, model_runs in runs.items()}
    text = wording.at_chance_text(found, seeds, RULES)
    assert "model3 at every seed" in text and "model2_adam at seed 1 (1 of 3)" in text and "model1" not in text
    spreads = {name: claims.spread(model_runs, lambda item: item.test_accuracy) for name, model_runs in runs.items()}
    metrics = summary.metrics_by_model([], spreads, spreads, found)
    assert metrics["model3"]["runs_at_chance"] == 3 and metrics["model2_adam"]["runs_at_chance"] == 1 and metrics["model1"]["runs_at_chance"] == 0

    learned = {name: model_runs for name, model_runs in runs.items() if name not in {"model3", "model2_adam"}}
    none = observations.runs_at_chance(learned, RULES)
    assert wording.at_chance_text(none, seeds, RULES).startswith("No run ended at chance (test accuracy at most 20.00%)")
