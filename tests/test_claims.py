"""The claims table: each declared rule flips its verdict when the numbers do."""

from __future__ import annotations

import json

import numpy as np

from stages.reporting import claims
from stages.reporting.claims import INCONCLUSIVE, NOT_EVALUATED, NOT_SUPPORTED, SUPPORTED, Run
from tests.conftest import REPORT_RULES as RULES

IMAGES = 10_000
MODELS = ["model1", "model2", "model3", "model4"]


def run(seed: int, accuracy: float, first_epoch: float = 0.97, overfits: bool = False, one_class: bool = False) -> Run:
    """A run of 20 epochs: validation accuracy `first_epoch` after epoch 1, then 0.99; validation loss
    that rises 40% from its minimum by the end when `overfits`, flat otherwise."""
    correct = np.zeros(IMAGES, dtype=bool)
    correct[: round(accuracy * IMAGES)] = True
    val_accuracy = (first_epoch, *([0.99] * 19))
    val_loss = tuple(0.05 * (1 + 0.4 * max(0, epoch - 5) / 14) if overfits else 0.05 for epoch in range(20))
    loss = tuple(0.3 / (epoch + 1) for epoch in range(20))
    return Run(seed, accuracy, 0.03, 0.01, val_accuracy, correct, val_loss, loss, 0.004, 1.0 if one_class else 0.2)


def notebook_like() -> dict[str, list[Run]]:
    """Three seeds each, shaped like the notebook's story, with clear effects everywhere."""
    return {
        "model1": [run(0, 0.9933, overfits=True), run(1, 0.9931, overfits=True), run(2, 0.9936, overfits=True)],
        "model2": [run(0, 0.9776, 0.4), run(1, 0.9781, 0.5), run(2, 0.9770, 0.45)],
        "model3": [run(0, 0.1135, 0.11, one_class=True), run(1, 0.1134, 0.11, one_class=True), run(2, 0.1136, 0.11, one_class=True)],
        "model4": [run(0, 0.9960, 0.982), run(1, 0.9962, 0.983), run(2, 0.9961, 0.981)],
        "model4_glorot": [run(0, 0.9945, 0.70), run(1, 0.9940, 0.71), run(2, 0.9946, 0.69)],
        "model2_adam": [run(0, 0.9890, 0.9), run(1, 0.9893, 0.91), run(2, 0.9888, 0.9)],
    }


def verdicts(runs: dict[str, list[Run]], rules=RULES) -> dict[int, str]:
    return {claim.number: claim.verdict for claim in claims.evaluate_claims(runs, rules, MODELS)}


def test_clear_effects_support_every_claim() -> None:
    assert verdicts(notebook_like()) == {1: SUPPORTED, 2: SUPPORTED, 3: SUPPORTED, 4: SUPPORTED, 5: SUPPORTED, 6: SUPPORTED}


def test_claim_5_inconclusive_with_its_power_then_not_supported_by_equivalence() -> None:
    runs = notebook_like()
    # Model 4 ahead of Model 1 on average, the seeds overlapping: inconclusive, with power and seeds needed.
    runs["model4"] = [run(0, 0.9925, 0.982), run(1, 0.9975, 0.983), run(2, 0.9940, 0.981)]
    claim = claims.evaluate_claims(runs, RULES, MODELS)[4]
    assert claim.verdict == INCONCLUSIVE
    assert "power to detect 0.1 points with 3 seeds" in claim.evidence and "seeds per model would give 0.8" in claim.evidence
    # Equal to Model 1 within a hundredth of a point at every seed, tight spread: equivalence shown, not supported.
    runs["model1"] = [run(seed, 0.99600 + 0.00001 * seed, overfits=True) for seed in range(3)]
    runs["model4"] = [run(seed, 0.99601 + 0.00001 * seed, 0.98) for seed in range(3)]
    comparison = claims.evaluate_claims(runs, RULES, MODELS)[4].comparisons[0]
    assert comparison.worse == "model1" and comparison.verdict == NOT_SUPPORTED and comparison.equivalence_p_holm < 0.05
    # The opposite effect, significant: not supported either.
    runs["model4"] = [run(seed, 0.9900 + 0.0001 * seed, 0.98) for seed in range(3)]
    assert claims.evaluate_claims(runs, RULES, MODELS)[4].comparisons[0].verdict == NOT_SUPPORTED


def test_claim_2_flips_with_the_numbers() -> None:
    runs = notebook_like()
    runs["model2"], runs["model3"] = runs["model3"], runs["model2"]
    assert verdicts(runs)[2] == NOT_SUPPORTED


def test_claim_4_decides_on_the_continuous_measure_and_uses_the_exact_test_without_spread() -> None:
    runs = notebook_like()
    # Identical epoch-1 values at every seed on both sides: no t-test; the exact test's best p is 0.1.
    runs["model4"] = [run(seed, 0.9960 + seed / 1e4, 0.982) for seed in range(3)]
    runs["model4_glorot"] = [run(seed, 0.9945, 0.70) for seed in range(3)]
    claim = claims.evaluate_claims(runs, RULES, MODELS)[3]
    assert claim.comparisons[0].test == "exact permutation test" and claim.comparisons[0].smallest_p == 0.1
    assert "smallest p possible with these seeds: 0.1" in claim.evidence
    assert claim.verdict == INCONCLUSIVE  # 0.1 can never pass 0.05: more seeds are the only way
    # The epochs-to-threshold column describes; a threshold that flips it does not flip the verdict.
    assert verdicts(runs, RULES.model_copy(update={"convergence_accuracy": 0.9815}))[4] == INCONCLUSIVE
    # A gap of about 1.2 points, tight: faster by the declared 1-point minimum; against a 2-point
    # minimum the equivalence test shows it is smaller than that: not supported.
    runs = notebook_like()
    runs["model4_glorot"] = [run(0, 0.9945, 0.970), run(1, 0.9940, 0.971), run(2, 0.9946, 0.9705)]
    assert verdicts(runs)[4] == SUPPORTED
    assert verdicts(runs, RULES.model_copy(update={"min_convergence_difference": 0.02}))[4] == NOT_SUPPORTED


def test_claim_1_follows_the_validation_loss_sign_at_every_seed() -> None:
    runs = notebook_like()
    runs["model1"][1] = run(1, 0.9931)  # one seed whose validation loss stays flat
    assert verdicts(runs)[1] == INCONCLUSIVE
    runs["model1"] = [run(seed, 0.9931) for seed in range(3)]
    assert verdicts(runs)[1] == NOT_SUPPORTED
    runs = notebook_like()
    assert verdicts(runs, RULES.model_copy(update={"overfit_val_loss_rise": 0.5}))[1] == NOT_SUPPORTED


def test_claim_3_says_what_the_stuck_model_learned_and_a_learning_model3_is_not_stuck() -> None:
    claim = claims.evaluate_claims(notebook_like(), RULES, MODELS, prior_loss=2.3010)[2]
    assert "predicts one class for every test image at 3 of 3 seeds" in claim.evidence and "2.3010" in claim.evidence
    assert "learned the class prior" in claim.evidence and "local minimum would take" in claim.evidence
    runs = notebook_like()
    runs["model3"] = [run(seed, 0.90 + seed / 1000) for seed in range(3)]
    assert verdicts(runs)[3] == NOT_SUPPORTED


def test_holm_covers_every_test_behind_the_claims() -> None:
    claim_list = claims.evaluate_claims(notebook_like(), RULES, MODELS)
    comparisons = {(item.better, item.worse, item.measure.name): item for claim in claim_list for item in claim.comparisons}
    # model2 vs model3 backs claims 2 and 3, model4 vs model3 claims 3 and 5: each is one test; 8 tests, 16 p-values.
    assert len(comparisons) == 8
    for item in comparisons.values():
        assert item.p_holm >= item.p_value
    # A stricter family-wise level turns a borderline claim inconclusive.
    runs = notebook_like()
    runs["model2_adam"] = [run(0, 0.9810, 0.9), run(1, 0.9812, 0.9), run(2, 0.9809, 0.9)]
    assert verdicts(runs)[6] == SUPPORTED
    assert verdicts(runs, RULES.model_copy(update={"significance_level": 0.0001}))[6] == INCONCLUSIVE


def test_a_model_without_runs_leaves_every_claim_not_evaluated() -> None:
    runs = notebook_like()
    runs.pop("model4_glorot")
    assert set(verdicts(runs).values()) == {NOT_EVALUATED}


def test_table_and_metrics_carry_the_numbers() -> None:
    claim_list = claims.evaluate_claims(notebook_like(), RULES, MODELS)
    table = claims.claims_table(claim_list)
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(rows) == 6
    assert "Welch's t-test p = " in rows[1] and "Holm" in rows[1] and "McNemar: " in rows[1] and "p = < 1e-300" in rows[1]
    metrics = claims.evidence_metrics(claim_list)
    json.dumps(metrics, allow_nan=False)
    entry = metrics["claim5"]["model4_vs_model1"]
    assert entry["verdict"] == SUPPORTED and entry["effect"] > 0.001 and entry["p_holm"] < 0.05 and entry["test"] == "Welch's t-test"
