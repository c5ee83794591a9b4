"""Fairness audit: the gate fails on a deliberately biased model and passes on a fair one;
the disparities equal Fairlearn's; small groups are reported but not gated; the stage runs
on the tiny training set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from training.fairness import (
    FairnessLimits,
    audit,
    disparities,
    group_metrics,
    main,
    mitigated_alerts,
)

LIMITS = FairnessLimits(
    max_demographic_parity_difference=0.01,
    max_equalized_odds_difference=0.10,
    min_group_frauds=30,
    min_group_rows=500,
)


def population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two behavioural features, a group (A, B and a small C) and fraud that depends on the
    behaviour only, at about 3 %: the groups have the same true risk."""
    rng = np.random.default_rng(seed)
    group = rng.choice(np.array(["A", "B", "C"]), size=n, p=[0.56, 0.43, 0.01])
    x = rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.2 * x[:, 0] + 1.2 * x[:, 1] - 5.0)))).astype(np.int8)
    return x, group, y


def fit(x: np.ndarray, y: np.ndarray) -> lgb.Booster:
    data = lgb.Dataset(x, y, params={"verbose": -1})
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 1}
    return lgb.train(params, data, num_boost_round=60)


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    """A fair model (behaviour only) and a biased one: it sees the group, and its training
    labels mark 15 % of group B's legitimate transactions as fraud."""
    x, group, y = population(40_000, seed=1)
    rng = np.random.default_rng(2)
    biased_y = y.copy()
    biased_y[(group == "B") & (y == 0) & (rng.random(len(y)) < 0.15)] = 1
    with_group = np.column_stack([x, (group == "B").astype(float)])
    return {"fair": fit(x, y), "biased": fit(with_group, biased_y)}


@pytest.fixture(scope="module")
def later() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return population(40_000, seed=3)


def alerts_of(model: lgb.Booster, x: np.ndarray, group: np.ndarray) -> np.ndarray:
    inputs = x if model.num_feature() == 2 else np.column_stack([x, (group == "B").astype(float)])
    return np.asarray(model.predict(inputs)) >= 0.3


def test_the_gate_fails_on_a_biased_model_and_passes_on_a_fair_one(
    models: dict[str, Any], later: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, group, y = later
    sensitive = pd.DataFrame({"segment": group})
    fair = audit(y, alerts_of(models["fair"], x, group), sensitive, LIMITS)
    biased = audit(y, alerts_of(models["biased"], x, group), sensitive, LIMITS)

    assert fair["passed"], fair["violations"]
    assert fair["attributes"]["segment"]["dpd"] < 0.005
    assert not biased["passed"]
    result = biased["attributes"]["segment"]
    assert result["dpd"] > 0.02  # group B is alerted far more often for the same risk
    assert result["eod"] > 0.10
    assert any("demographic parity difference" in v for v in biased["violations"])
    assert any("equalized odds difference" in v for v in biased["violations"])


def test_disparities_equal_fairlearns_own_functions(
    models: dict[str, Any], later: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, group, y = later
    alert = alerts_of(models["biased"], x, group)
    ours = disparities(group_metrics(y, alert, group))
    pred = alert.astype(int)
    assert ours["dpd"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=group), abs=1e-12
    )
    assert ours["eod"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=group), abs=1e-12
    )


def test_small_groups_are_reported_but_not_gated(
    models: dict[str, Any], later: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, group, y = later
    result = audit(y, alerts_of(models["fair"], x, group), pd.DataFrame({"g": group}), LIMITS)
    rows = {r["group"]: r for r in result["attributes"]["g"]["groups"]}
    assert rows["C"]["frauds"] < LIMITS.min_group_frauds
    assert not rows["C"]["gated"] and rows["A"]["gated"] and rows["B"]["gated"]
    assert result["attributes"]["g"]["gated_groups"] == ["A", "B"]
    assert result["attributes"]["g"]["judged"]
    assert rows["A"]["rows"] + rows["B"]["rows"] + rows["C"]["rows"] == len(y)

    strict = FairnessLimits(0.01, 0.10, min_group_frauds=10_000, min_group_rows=1)
    unjudged = audit(y, alerts_of(models["fair"], x, group), pd.DataFrame({"g": group}), strict)
    assert not unjudged["attributes"]["g"]["judged"]
    assert unjudged["attributes"]["g"]["dpd"] == 0.0


def test_threshold_optimizer_reduces_the_biased_models_odds_gap(
    models: dict[str, Any], later: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    validation = population(40_000, seed=4)
    x_v, group_v, y_v = validation
    x_t, group_t, y_t = later

    def score(x: np.ndarray, group: np.ndarray) -> np.ndarray:
        return np.asarray(
            models["biased"].predict(np.column_stack([x, (group == "B").astype(float)]))
        )

    big_v, big_t = group_v != "C", group_t != "C"
    alerts = mitigated_alerts(
        (score(x_v, group_v)[big_v], y_v[big_v], group_v[big_v]),
        (score(x_t, group_t)[big_t], group_t[big_t]),
        "balanced_accuracy_score",
        seed=0,
    )
    before = audit(
        y_t[big_t],
        alerts_of(models["biased"], x_t, group_t)[big_t],
        pd.DataFrame({"g": group_t[big_t]}),
        LIMITS,
    )["attributes"]["g"]
    after = audit(y_t[big_t], alerts, pd.DataFrame({"g": group_t[big_t]}), LIMITS)["attributes"][
        "g"
    ]
    assert after["eod"] < before["eod"] / 2


def test_stage_on_the_tiny_training_set(
    tiny_training_set: Path,
    tiny_bundle: Path,
    tiny_data: Path,
    tiny_params: dict[str, Any],
    tmp_path: Path,
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params))
    out, metrics = tmp_path / "fairness", tmp_path / "fairness.json"
    argv = [
        "--training-set",
        str(tiny_training_set),
        "--bundle",
        str(tiny_bundle),
        "--customers",
        str(tiny_data / "customers.parquet"),
        "--params",
        str(params),
        "--out",
        str(out),
        "--metrics",
        str(metrics),
    ]
    main(argv)
    report = json.loads(metrics.read_text())
    attributes = tiny_params["fairness"]["attributes"]
    assert sorted(report["attributes"]) == sorted(attributes)
    for name in attributes:
        result = report["attributes"][name]
        assert sum(g["rows"] for g in result["groups"]) == report["test_rows"]
        assert (out / result["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    policies = {(r["attribute"], r["policy"]) for r in report["mitigation"]}
    assert len(policies) == len(attributes) * (
        1 + len(tiny_params["fairness"]["mitigation_objectives"])
    )
    deployed = [r for r in report["mitigation"] if r["policy"] == "deployed tiers"]
    assert all(0.0 <= r["recall"] <= 1.0 for r in deployed)
    first = metrics.read_bytes()
    main(argv)
    assert metrics.read_bytes() == first  # deterministic: same inputs, same bytes
