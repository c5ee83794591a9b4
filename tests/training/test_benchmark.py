"""The quality benchmark: the cost policy and scenario subsets on constructed arrays, and one
end-to-end run on the tiny simulator data plus a Handbook-format file made from it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from training import benchmark
from training.inputs.frames import Frame
from training.modelling.decision import CostModel

COST = CostModel()
LABELS = tuple(benchmark.MODELS.values())
K = 10


def test_policy_cost_reviews_the_daily_top_k_and_approves_the_rest() -> None:
    y = np.array([1, 0, 0, 1, 0, 0])
    amount = np.array([100.0, 10.0, 10.0, 50.0, 10.0, 10.0])
    day = np.array([0, 0, 0, 1, 1, 1])
    score = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.1])  # each day's fraud ranks first
    review = COST.review
    caught = review * 2 + (100.0 + 50.0) * (1 - COST.review_recovery)
    assert benchmark.policy_cost(y, score, day, amount, 1, COST) == pytest.approx(caught)
    # The fraud ranked last every day: both get through, two legitimate reviews are paid.
    assert benchmark.policy_cost(y, -score, day, amount, 1, COST) == pytest.approx(
        150.0 + 2 * review
    )
    assert caught < 150.0  # alerting on fraud beats approving everything
    # k larger than a day reviews all its rows.
    assert benchmark.policy_cost(y, score, day, amount, 5, COST) == pytest.approx(
        6 * review + 150.0 * (1 - COST.review_recovery)
    )


def test_scenario_subsets_keep_every_legitimate_row_and_one_scenarios_fraud() -> None:
    y = np.array([0, 1, 1, 0, 1])
    scenario = np.array(["none", "a", "b", "none", "a"])
    subsets = benchmark.scenario_subsets(y, scenario)
    assert sorted(subsets) == ["a", "b"]
    assert subsets["a"].tolist() == [True, True, False, True, True]
    assert subsets["b"].tolist() == [True, False, True, True, False]


class _Stub:
    """Scores every model from fixed arrays (the three models' interface)."""

    def __init__(self, scores: dict[str, np.ndarray]) -> None:
        self.scores = scores

    def score(self, x: np.ndarray) -> Any:
        return SimpleNamespace(
            probability=self.scores["pipeline"], clf_margin=self.scores["lightgbm_tuned"]
        )

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.scores["lightgbm_defaults"]
        return np.column_stack([1 - p, p])


def _frame() -> tuple[Frame, benchmark.Models]:
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random(n) < 0.1).astype(np.int8)
    meta = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.sort(rng.uniform(0, 4 * 86_400, n)), unit="s"),
            "customer_id": rng.integers(0, 50, n).astype(str),
            "amount": rng.uniform(5, 200, n),
            "fraud_scenario": np.where(y == 1, np.where(rng.random(n) < 0.5, "a", "b"), "none"),
        }
    )
    scores = {
        "pipeline": y + rng.normal(0, 0.3, n),
        "lightgbm_tuned": y + rng.normal(0, 0.6, n),
        "lightgbm_defaults": rng.random(n),
    }
    stub = _Stub(scores)
    seconds = {"pipeline": 3.0, "lightgbm_tuned": 2.0, "lightgbm_defaults": 1.0}
    return Frame(np.zeros((n, 2)), y, meta), benchmark.Models(stub, stub, seconds)


@pytest.mark.parametrize("has_cards", [True, False])
def test_evaluate_rows_per_scenario_and_cards_only_where_they_exist(has_cards: bool) -> None:
    frame, models = _frame()
    rows, curve = benchmark.evaluate("toy", frame, models, 5, COST, has_cards=has_cards)
    assert [r["data_set"] for r in rows] == ["toy", "toy · a", "toy · b"]
    assert rows[1]["rows"] + rows[2]["rows"] - int((frame.y == 0).sum()) == len(frame)
    whole = rows[0]["models"]
    assert whole["pipeline"]["auprc"] > whole["lightgbm_tuned"]["auprc"]
    assert whole["lightgbm_tuned"]["auprc"] > whole["lightgbm_defaults"]["auprc"]
    assert whole["pipeline"]["cost"] < whole["pipeline"]["approve_all_cost"]
    assert whole["lightgbm_defaults"]["training_seconds"] == 1.0
    card = whole["pipeline"]["card_precision_at_k"]
    assert (card is None) != has_cards
    assert set(curve["scores"]) == set(benchmark.MODELS)


def _ulb_frame(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    """ULB-format rows over two days (no card ids); fraud, about 5 %, shifts V1 and Amount."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(rows) < 0.05
    table = {"Time": np.sort(rng.uniform(0, 2 * 86_400, rows)).round()}
    table |= {f"V{i}": rng.normal(size=rows) for i in range(1, 29)}
    table["V1"] = table["V1"] - 2.0 * fraud
    table["Amount"] = (rng.lognormal(3.0, 1.0, rows) * np.where(fraud, 3.0, 1.0)).round(2)
    table["Class"] = fraud.astype(int)
    return pd.DataFrame(table)


@pytest.fixture(scope="module")
def bench(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_params: dict[str, Any],
    tiny_training_set: Path,
    tiny_data: Path,
) -> tuple[dict[str, Any], str, Path]:
    """One run of ``main`` on the tiny training set and a Handbook-format copy of tiny v0."""
    out = tmp_path_factory.mktemp("bench")
    params = out / "params.yaml"
    # A budget below the tiny data's daily volume, so that ranking matters.
    params.write_text(
        yaml.safe_dump(
            {**tiny_params, "evaluate": {**tiny_params["evaluate"], "precision_at_k": K}}
        )
    )
    tx = pd.read_parquet(tiny_data / "v0" / "transactions.parquet")
    handbook = out / "tiny_handbook.csv"
    pd.DataFrame(
        {
            "TRANSACTION_ID": tx["transaction_id"],
            "TX_DATETIME": pd.to_datetime(tx["timestamp"], utc=True).dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "CUSTOMER_ID": tx["customer_id"],
            "TERMINAL_ID": tx["terminal_id"],
            "TX_AMOUNT": tx["amount"],
            "TX_FRAUD": tx["is_fraud"].astype(int),
        }
    ).to_csv(handbook, index=False)
    ulb = out / "tiny_ulb.csv"
    _ulb_frame().to_csv(ulb, index=False)
    paths = {name: out / f"quality.{name}" for name in ("json", "md", "png")}
    benchmark.main(
        [
            "--training-set",
            str(tiny_training_set),
            "--params",
            str(params),
            "--external",
            f"handbook:{handbook}",
            "--external",
            f"ulb:{ulb}",
            "--out",
            str(paths["json"]),
            "--report",
            str(paths["md"]),
            "--plot",
            str(paths["png"]),
            "--threads",
            "1",
        ]
    )
    return json.loads(paths["json"].read_text()), paths["md"].read_text(), paths["png"]


def test_benchmark_table_has_a_row_per_data_set_and_model(
    bench: tuple[dict[str, Any], str, Path],
) -> None:
    results, report, _ = bench
    names = [d["data_set"] for d in results["data_sets"]]
    assert names[:1] == ["v0 test"] and "v1 drifted" in names
    assert "handbook:tiny_handbook.csv" in names and "ulb:tiny_ulb.csv" in names
    assert any(n.startswith("v0 test · ") for n in names)
    assert any(n.startswith("v1 drifted · ") for n in names)
    lines = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    body = lines[1:]
    assert len(body) == len(names) * len(LABELS)
    for name in names:
        rows = [line for line in body if line.startswith(f"| {name} |")]
        assert [line.split(" | ")[1] for line in rows] == list(LABELS)


def test_benchmark_metrics_are_in_range_and_the_models_differ(
    bench: tuple[dict[str, Any], str, Path],
) -> None:
    results, _, _ = bench
    for data_set in results["data_sets"]:
        for values in data_set["models"].values():
            assert 0.0 <= values["auprc"] <= 1.0
            assert 0.0 <= values["roc_auc"] <= 1.0
            assert 0.0 <= values["recall_at_k"] <= 1.0
            assert values["cost"] >= 0.0 and values["training_seconds"] > 0.0
            # Only ULB lacks card ids.
            no_cards = data_set["data_set"].startswith("ulb:")
            assert (values["card_precision_at_k"] is None) == no_cards
    v0 = results["data_sets"][0]["models"]
    assert v0["lightgbm_defaults"]["auprc"] != v0["lightgbm_tuned"]["auprc"]
    assert v0["pipeline"]["auprc"] > 0.2  # fraud is detectable in the tiny data
    # A model that alerts on fraud pays less than letting every fraud through.
    assert v0["pipeline"]["cost"] < v0["pipeline"]["approve_all_cost"]


def test_benchmark_plot_is_a_png(bench: tuple[dict[str, Any], str, Path]) -> None:
    _, _, plot = bench
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    width, height = Image.open(plot).size
    assert width > 3 * height  # one panel per data set: v0, v1, handbook, ulb


def test_external_spec_must_name_a_schema(tmp_path: Path, tiny_params: dict[str, Any]) -> None:
    from training.modelling.fit import TrainConfig

    config = TrainConfig.from_params(tiny_params["train"])
    with pytest.raises(SystemExit, match="SCHEMA:PATH"):
        benchmark.external_run("parquet:x.csv", tiny_params, config, 1, 100)
