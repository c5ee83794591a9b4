"""Stage ``fairness``: Fairlearn group metrics at the deployed thresholds, a gate, and a
mitigation comparison.

An alert is any decision other than approve (the bundle's MEDIUM tier and above), on v0's
time-later test part. For every sensitive attribute of the simulator (``age_band``,
``gender``, ``region``: synthetic, never model features; docs/data.md) a Fairlearn
``MetricFrame`` gives the alert (selection) rate, false-positive rate, false-negative rate
and precision per group, and the demographic parity difference (DPD) and equalized odds
difference (EOD) are compared with the limits in ``params.yaml``.

Rates of small groups are noise: a group enters the gate only with at least
``min_group_frauds`` frauds and ``min_group_rows`` rows. Smaller groups are still reported,
marked as not gated, together with DPD and EOD over all groups. An attribute with fewer
than two gated groups cannot be judged; the report says so rather than claim a pass.

The mitigation is Fairlearn's ``ThresholdOptimizer`` with an equalized-odds constraint,
fitted on the validation part and applied to the test part for each objective in
``mitigation_objectives``. Its alert replaces the deployed one. A mitigated alert keeps the
deployed tier, or becomes a review if the deployed decision was approve. The comparison shows
alerts per day, precision, recall, cost, DPD and EOD next to the deployed policy.

This stage never fails. It records ``passed`` and the violations in
``metrics/fairness.json``, and the ``audit`` stage turns them into a non-zero exit after
writing the report. Parameters: ``params.yaml`` ``fairness``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.modelling import metrics as m
from training.modelling.decision import CostModel, decision_cost
from training.reporting.reports_io import pyplot, write_json


@dataclass(frozen=True)
class FairnessLimits:
    """``params.yaml`` ``fairness``: the gate's limits and minimum group support."""

    max_demographic_parity_difference: float
    max_equalized_odds_difference: float
    min_group_frauds: int
    min_group_rows: int

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> FairnessLimits:
        return cls(**{name: section[name] for name in cls.__dataclass_fields__})


def sensitive_attributes(
    meta: pd.DataFrame, customers: pd.DataFrame, names: list[str]
) -> pd.DataFrame:
    """The customers' sensitive attributes, row-aligned with ``meta``."""
    table = customers.set_index("customer_id")[names].reindex(meta["customer_id"])
    if table.isna().any().any():
        raise ValueError("some transactions have customers without sensitive attributes")
    return table.reset_index(drop=True)


def _precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    alerts = int(np.sum(y_pred))
    return float(np.sum(y_true[y_pred == 1]) / alerts) if alerts else float("nan")


def group_metrics(y: np.ndarray, alert: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """Per group: rows and frauds, then Fairlearn ``MetricFrame``'s alert (selection) rate,
    false-positive rate, false-negative rate and precision."""
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
    )

    frame = MetricFrame(
        metrics={
            "alert_rate": selection_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "precision": _precision,
        },
        y_true=y,
        y_pred=alert.astype(np.int8),
        sensitive_features=pd.Series(groups, name="group"),
    )
    support = pd.DataFrame({"group": groups, "y": y}).groupby("group")["y"].agg(["size", "sum"])
    support.columns = ["rows", "frauds"]
    return support.join(frame.by_group)


def disparities(table: pd.DataFrame) -> dict[str, float]:
    """Fairlearn's demographic parity difference and equalized odds difference (the
    ``between_groups`` largest gaps) from a :func:`group_metrics` table."""
    if len(table) < 2:
        return {"dpd": 0.0, "eod": 0.0}

    def gap(values: pd.Series) -> float:
        return float(values.max() - values.min())

    return {
        "dpd": gap(table["alert_rate"]),
        "eod": max(gap(1.0 - table["fnr"]), gap(table["fpr"])),
    }


def audit_attribute(
    y: np.ndarray, alert: np.ndarray, groups: np.ndarray, limits: FairnessLimits
) -> dict[str, Any]:
    """Group table, DPD and EOD over the gated groups (and over all), and the verdict."""
    table = group_metrics(y, alert, groups)
    gated_mask = (table["frauds"] >= limits.min_group_frauds) & (
        table["rows"] >= limits.min_group_rows
    )
    gate, every = disparities(table[gated_mask]), disparities(table)
    violations = []
    if gate["dpd"] > limits.max_demographic_parity_difference:
        violations.append(
            f"demographic parity difference {gate['dpd']:.4f} > "
            f"{limits.max_demographic_parity_difference}"
        )
    if gate["eod"] > limits.max_equalized_odds_difference:
        violations.append(
            f"equalized odds difference {gate['eod']:.4f} > {limits.max_equalized_odds_difference}"
        )
    rows = [
        {
            "group": str(group),
            "gated": bool(gated),
            "rows": int(r["rows"]),
            "frauds": int(r["frauds"]),
            **{k: _number(r[k]) for k in ("alert_rate", "fpr", "fnr", "precision")},
        }
        for (group, r), gated in zip(table.iterrows(), gated_mask, strict=True)
    ]
    return {
        "dpd": gate["dpd"],
        "eod": gate["eod"],
        "dpd_all_groups": every["dpd"],
        "eod_all_groups": every["eod"],
        "gated_groups": [str(g) for g in table.index[gated_mask]],
        "judged": int(gated_mask.sum()) >= 2,
        "passed": not violations,
        "violations": violations,
        "groups": rows,
    }


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def audit(
    y: np.ndarray, alert: np.ndarray, sensitive: pd.DataFrame, limits: FairnessLimits
) -> dict[str, Any]:
    """Every attribute's audit and the overall gate verdict."""
    attributes = {
        name: audit_attribute(y, alert, sensitive[name].to_numpy(dtype=str), limits)
        for name in sensitive.columns
    }
    violations = [f"{n}: {v}" for n, a in attributes.items() for v in a["violations"]]
    return {"passed": not violations, "violations": violations, "attributes": attributes}


def _score_as_prediction() -> Any:
    """A fitted scikit-learn estimator whose prediction is the probability it is given, so
    ``ThresholdOptimizer`` chooses group thresholds on the ensemble's own score."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class ScoreAsPrediction(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        def fit(self, x: np.ndarray, y: np.ndarray) -> ScoreAsPrediction:
            self.classes_ = np.array([0, 1])
            return self

        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.asarray(x)[:, 0]

    return ScoreAsPrediction().fit(np.zeros((2, 1)), np.array([0, 1]))


def mitigated_alerts(
    validation: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    objective: str,
    seed: int,
) -> np.ndarray:
    """Test alerts of a ``ThresholdOptimizer`` (equalized odds) fitted on validation.

    ``validation`` is (probability, label, group), ``test`` is (probability, group).
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    prob_v, y_v, group_v = validation
    prob_t, group_t = test
    optimizer = ThresholdOptimizer(
        estimator=_score_as_prediction(),
        constraints="equalized_odds",
        objective=objective,
        prefit=True,
        predict_method="predict",
    )
    optimizer.fit(prob_v.reshape(-1, 1), y_v, sensitive_features=group_v)
    alerts = optimizer.predict(prob_t.reshape(-1, 1), sensitive_features=group_t, random_state=seed)
    return np.asarray(alerts, dtype=bool)


def policy_row(
    name: str, levels: np.ndarray, test: Frame, gated: dict[str, Any], cost_model: CostModel
) -> dict[str, Any]:
    """Accuracy and cost of one decision policy on the test part, next to its disparities
    (``gated``: the policy's :func:`audit_attribute` result)."""
    alert = levels >= 1
    amount = test.meta["amount"].to_numpy(dtype=np.float64)
    approve_all = float(amount[test.y == 1].sum())
    cost = decision_cost(levels, test.y, amount, cost_model)
    quality = m.at_threshold(test.y, alert)
    return {
        "policy": name,
        "alerts_per_day": alert.sum() / test.n_days,
        "precision": quality["precision"],
        "recall": quality["recall"],
        "cost": cost,
        "cost_saving": 1.0 - cost / approve_all if approve_all else 0.0,
        "dpd": gated["dpd"],
        "eod": gated["eod"],
    }


def compare_mitigations(
    attribute: str,
    prob: tuple[np.ndarray, np.ndarray],
    levels: np.ndarray,
    deployed: dict[str, Any],
    parts: tuple[Frame, Frame],
    groups: tuple[np.ndarray, np.ndarray],
    cost_model: CostModel,
    section: dict[str, Any],
) -> list[dict[str, Any]]:
    """The deployed policy (``deployed``: its audit of this attribute) and one
    ``ThresholdOptimizer`` per objective."""
    limits = FairnessLimits.from_params(section)
    (validation, test), (group_v, group_t) = parts, groups
    rows = [policy_row("deployed tiers", levels, test, deployed, cost_model)]
    for objective in section["mitigation_objectives"]:
        name = f"ThresholdOptimizer(equalized_odds, {objective})"
        try:
            alerts = mitigated_alerts(
                (prob[0], validation.y, group_v), (prob[1], group_t), objective, section["seed"]
            )
        except ValueError as error:  # e.g. a group without frauds, or unseen in validation
            rows.append({"policy": name, "skipped": str(error).splitlines()[0]})
            continue
        mitigated = np.where(alerts, np.maximum(levels, 1), 0)
        gated = audit_attribute(test.y, mitigated >= 1, group_t, limits)
        rows.append(policy_row(name, mitigated, test, gated, cost_model))
    return [{"attribute": attribute, **r} for r in rows]


def plot_attribute(name: str, result: dict[str, Any], path: Path) -> None:
    """Alert rate, FPR and FNR per group, gated groups solid and the others hatched."""
    plt = pyplot()
    rows = result["groups"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, (key, label) in zip(
        axes,
        (
            ("alert_rate", "alert rate"),
            ("fpr", "false-positive rate"),
            ("fnr", "false-negative rate"),
        ),
        strict=True,
    ):
        values = [r[key] if r[key] is not None else 0.0 for r in rows]
        bars = ax.bar([r["group"] for r in rows], values, color="#4c72b0")
        for bar, row in zip(bars, rows, strict=True):
            if not row["gated"]:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"{name}: DPD {result['dpd']:.4f}, EOD {result['eod']:.4f} "
        "(hatched: too few frauds or rows to gate)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from fraud_model.bundle import load_bundle
    from fraud_model.scorer import EnsembleScorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--customers", type=Path, default=Path("data/customers.parquet"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/fairness"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/fairness.json"))
    args = parser.parse_args(argv)
    section = load_params(args.params)["fairness"]
    limits = FairnessLimits.from_params(section)
    started = time.perf_counter()
    bundle = load_bundle(args.bundle)
    scorer = EnsembleScorer(bundle, available_cores())
    _, parts = load_parts(args.training_set, "v0", ("validation", "test"))
    validation, test = parts["validation"], parts["test"]
    customers = pd.read_parquet(args.customers)
    sens_v = sensitive_attributes(validation.meta, customers, section["attributes"])
    sens_t = sensitive_attributes(test.meta, customers, section["attributes"])
    prob_v = scorer.score(validation.x).probability
    batch = scorer.score(test.x)
    levels = batch.level_index
    result = audit(test.y, levels >= 1, sens_t, limits)
    cost_model = CostModel(**bundle.metadata.get("cost_model", {}))
    mitigation = []
    for name in section["attributes"]:
        groups = (sens_v[name].to_numpy(dtype=str), sens_t[name].to_numpy(dtype=str))
        mitigation += compare_mitigations(
            name,
            (prob_v, batch.probability),
            levels,
            result["attributes"][name],
            (validation, test),
            groups,
            cost_model,
            section,
        )
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    for name, attribute in result["attributes"].items():
        attribute["plot"] = f"{name}.png"
        plot_attribute(name, attribute, args.out / attribute["plot"])
    report = {
        "bundle_version": bundle.version,
        "test_rows": len(test),
        "test_frauds": int(test.y.sum()),
        "alert_threshold": bundle.tiers.medium,
        "limits": {k: getattr(limits, k) for k in FairnessLimits.__dataclass_fields__},
        **result,
        "mitigation": mitigation,
    }
    write_json(args.metrics, report)
    for name, attribute in result["attributes"].items():
        print(
            f"fairness: {name:9s} DPD {attribute['dpd']:.4f} EOD {attribute['eod']:.4f} "
            f"({'pass' if attribute['passed'] else 'FAIL'}; "
            f"gated {len(attribute['gated_groups'])}/{len(attribute['groups'])} groups)"
        )
    verdict = "passed" if result["passed"] else "FAILED: " + "; ".join(result["violations"])
    print(f"fairness: gate {verdict} ({time.perf_counter() - started:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
