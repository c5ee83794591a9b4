"""The simulator: deterministic, on-target fraud rate, every scenario, valid rows."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from training.data import check_transactions
from training.simulation.simulate import SCENARIOS, V0_SCENARIOS, SimulationConfig, simulate

SMALL = SimulationConfig(
    n_customers=120, n_terminals=250, v0_days=40, v1_days=20, nearby_terminals=8
)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return simulate(SMALL, progress=False).transactions


def _periods(frame: pd.DataFrame, config: SimulationConfig) -> dict[str, pd.DataFrame]:
    boundary = config.start + pd.Timedelta(days=config.v0_days)
    return {"v0": frame[frame.timestamp < boundary], "v1": frame[frame.timestamp >= boundary]}


def test_same_seed_gives_identical_data(small: pd.DataFrame) -> None:
    again = simulate(SMALL, progress=False)
    pd.testing.assert_frame_equal(small, again.transactions)


def test_another_seed_gives_other_data(small: pd.DataFrame) -> None:
    other = simulate(dataclasses.replace(SMALL, seed=43), progress=False).transactions
    assert not small["amount"].head(500).equals(other["amount"].head(500))


@pytest.mark.parametrize("rate", [0.01, 0.015, 0.02])
@pytest.mark.parametrize("seed", [1, 2])
def test_fraud_rate_within_0_2_points_of_target(rate: float, seed: int) -> None:
    config = dataclasses.replace(SMALL, fraud_rate=rate, seed=seed)
    frame = simulate(config, progress=False).transactions
    for name, period in _periods(frame, config).items():
        assert abs(period["is_fraud"].mean() - rate) <= 0.002, name


def test_every_scenario_present_and_card_testing_only_in_v1(small: pd.DataFrame) -> None:
    periods = _periods(small, SMALL)
    assert set(V0_SCENARIOS) <= set(periods["v0"]["fraud_scenario"])
    assert "card_testing" not in set(periods["v0"]["fraud_scenario"])
    assert set(SCENARIOS[1:]) <= set(periods["v1"]["fraud_scenario"])


def test_rows_meet_the_dataset_expectations(small: pd.DataFrame) -> None:
    for name, period in _periods(small, SMALL).items():
        assert check_transactions(period.reset_index(drop=True), name, SMALL.fraud_rate) == []


def test_scenarios_have_their_documented_signatures(small: pd.DataFrame) -> None:
    by = small.groupby("fraud_scenario")
    legit_amount = by["amount"].median()["none"]
    assert by["amount"].median()["large_amount"] > 4 * legit_amount
    card = small[small.fraud_scenario == "compromised_card"]
    assert (card["channel"] == "online").all() and (card["entry_mode"] == "manual").all()
    ato = small[small.fraud_scenario == "account_takeover"]
    assert ato["distance_from_home_km"].min() >= 300
    testing = small[small.fraud_scenario == "card_testing"]
    assert (testing["amount"] <= 3).mean() > 0.5 and (testing["channel"] == "online").all()
    terminal = small[small.fraud_scenario == "compromised_terminal"]
    # Every transaction at a compromised terminal inside its window is fraud:
    # few terminals, many rows.
    assert terminal["terminal_id"].nunique() < len(terminal) / 3


def test_v1_drifts_up_in_amount_and_online_share(small: pd.DataFrame) -> None:
    periods = _periods(small, SMALL)
    legit = {k: v[v.is_fraud == 0] for k, v in periods.items()}
    assert legit["v1"]["amount"].median() > 1.15 * legit["v0"]["amount"].median()
    online = {k: (v["channel"] == "online").mean() for k, v in legit.items()}
    assert online["v1"] > online["v0"] + 0.08


@pytest.mark.parametrize(
    "change",
    [
        {"fraud_rate": 0.0},
        {"scenario_shares": {"large_amount": 1.0}},
        {"scenario_shares": dict.fromkeys(V0_SCENARIOS, 0.5)},
        {"v0_days": 0},
    ],
)
def test_invalid_configuration_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(SMALL, **change)
