"""Two-step promotion: evaluate's offline verdict held as tags (``after_shadow``), then
``training.promote`` weighing it with the shadow results in a SQLite system of record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml

from system_of_record.rows import LabelRow, ShadowRow
from system_of_record.shadow import write_shadow
from system_of_record.store import RecordStore, open_store
from tests.conftest import tracking_restored
from tests.system_of_record.helpers import decision
from training import promote
from training.tracking import registry

NOW = datetime.now(UTC)
PARAMS = promote.PromoteParams(min_labelled=10, tolerance=0.02, window_days=14)
FRAUDS = {0, 4, 8}  # of tx-0 .. tx-11
CHAMPION_FLAGS = FRAUDS | {1}  # recall 1, precision 0.75
_names = count()


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with tracking_restored(), pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield registry.configure("test-experiment", root=tmp_path_factory.mktemp("mlflow"))


def register(mlflow: Any, name: str, source: Path) -> str:
    """A registered version (an empty model: only aliases and tags matter), as challenger."""
    client = mlflow.MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    source.mkdir(exist_ok=True)
    version = str(client.create_model_version(name, source=str(source)).version)
    client.set_registered_model_alias(name, registry.CHALLENGER, version)
    return version


def held_challenger(mlflow: Any, tmp_path: Path, auprc: float = 0.80) -> tuple[str, str, str]:
    """(model name, champion v1, challenger v2 held by the after_shadow gate vs 0.80)."""
    name = f"fraud-ensemble-{next(_names)}"
    first = register(mlflow, name, tmp_path / "m")
    gate = registry.apply_gate(mlflow, name, first, 0.80, None, 0.01, "after_shadow", "b1")
    assert gate.promoted  # no champion to shadow beside: the first is promoted
    second = register(mlflow, name, tmp_path / "m")
    registry.apply_gate(mlflow, name, second, auprc, 0.80, 0.01, "after_shadow", "b2")
    return name, first, second


def seeded(tmp_path: Path, challenger_flags: set[int], labelled: int = 12) -> RecordStore:
    """12 champion decisions, the challenger ``b2``'s shadow scores of them (flagged =
    review), and labels for the first ``labelled``."""
    store = open_store(f"sqlite:///{tmp_path / 'record.sqlite'}")
    when = NOW - timedelta(days=1)
    # The summary compares the models: the champion's side is its model_decision.
    champion = ["review" if i in CHAMPION_FLAGS else "approve" for i in range(12)]
    store.write_decisions(
        [decision(i, when, decided=d)._replace(model_decision=d) for i, d in enumerate(champion)]
    )
    flagged = ["review" if i in challenger_flags else "approve" for i in range(12)]
    write_shadow(
        store,
        [ShadowRow(f"tx-{i}", "b2", "b1", 0.5, "LOW", d, when) for i, d in enumerate(flagged)],
    )
    store.write_labels([LabelRow(f"tx-{i}", i in FRAUDS, "test", when) for i in range(labelled)])
    return store


def decided(mlflow: Any, name: str, store: RecordStore) -> dict[str, Any]:
    try:
        return promote.promote(mlflow, name, store, PARAMS, NOW)
    finally:
        store.close()


def test_a_challenger_as_good_in_shadow_is_promoted(mlflow: Any, tmp_path: Path) -> None:
    name, _, second = held_challenger(mlflow, tmp_path)
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == "1"  # held
    tags = mlflow.MlflowClient().get_model_version(name, second).tags
    assert tags[registry.GATE_OFFLINE] == "passes" and tags[registry.BUNDLE_VERSION] == "b2"
    assert tags[registry.GATE_REASON].endswith("champion unchanged until the shadow verdict")

    report = decided(mlflow, name, seeded(tmp_path, set(FRAUDS)))
    assert report["verdict"] == "promote", report["reason"]
    assert (report["champion_before"], report["champion_after"]) == ("1", second)
    shadow = report["shadow"]
    assert (shadow["labelled"], shadow["frauds"]) == (12, 3)
    assert shadow["challenger_precision"] == 1.0 and shadow["champion_precision"] == 0.75
    assert shadow["challenger_recall"] == shadow["champion_recall"] == 1.0
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == second
    tags = mlflow.MlflowClient().get_model_version(name, second).tags
    assert tags["promote.verdict"] == "promote" and tags["promote.labelled"] == "12"
    # Now champion: nothing left to decide.
    again = decided(mlflow, name, seeded(tmp_path, set(FRAUDS)))
    assert again["verdict"] == "none"


def test_too_few_labels_wait(mlflow: Any, tmp_path: Path) -> None:
    name, first, second = held_challenger(mlflow, tmp_path)
    report = decided(mlflow, name, seeded(tmp_path, set(FRAUDS), labelled=9))
    assert report["verdict"] == "wait"
    assert report["reason"] == f"v{second}: 9 labelled shadow rows in the last 14 days, 10 needed"
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == first


def test_worse_recall_in_shadow_is_refused(mlflow: Any, tmp_path: Path) -> None:
    name, first, _ = held_challenger(mlflow, tmp_path)
    report = decided(mlflow, name, seeded(tmp_path, {0, 4}))  # misses tx-8
    assert report["verdict"] == "refuse"
    assert "alert recall 0.667 vs the champion's 1.000" in report["reason"]
    assert "precision" not in report["reason"]  # 1.0 vs 0.75: better
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == first


def test_a_failed_offline_gate_is_refused_whatever_the_shadow(mlflow: Any, tmp_path: Path) -> None:
    name, first, second = held_challenger(mlflow, tmp_path, auprc=0.70)
    assert mlflow.MlflowClient().get_model_version(name, second).tags["gate.offline"] == "fails"
    report = decided(mlflow, name, seeded(tmp_path, set(FRAUDS)))
    assert report["verdict"] == "refuse"
    assert report["reason"] == f"v{second}: the challenger failed the offline gate"
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == first


def test_immediate_promotion_is_unchanged(mlflow: Any, tmp_path: Path) -> None:
    name = f"fraud-ensemble-{next(_names)}"
    first = register(mlflow, name, tmp_path / "m")
    assert registry.apply_gate(mlflow, name, first, 0.80, None, 0.01).promoted
    worse = register(mlflow, name, tmp_path / "m")
    gate = registry.apply_gate(mlflow, name, worse, 0.70, 0.80, 0.01)
    assert not gate.promoted and not gate.passed
    assert gate.reason == "challenger AUPRC 0.7000 vs champion 0.8000 (tolerance 0.01): fails"
    close = register(mlflow, name, tmp_path / "m")
    gate = registry.apply_gate(mlflow, name, close, 0.795, 0.80, 0.01, "immediate", "b3")
    assert gate.promoted and gate.reason.endswith("(tolerance 0.01): passes")
    assert registry.alias_version(mlflow, name, registry.CHAMPION) == close
    assert "gate.offline" not in mlflow.MlflowClient().get_model_version(name, close).tags
    with pytest.raises(ValueError, match="evaluate.promotion"):
        registry.apply_gate(mlflow, name, close, 0.8, 0.8, 0.01, "weekly")


def test_the_command_writes_the_verdict_and_fails_on_an_unreachable_record(
    mlflow: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _, second = held_challenger(mlflow, tmp_path)
    seeded(tmp_path, set(FRAUDS), labelled=9).close()
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "evaluate": {"experiment": "test-experiment", "model_name": name},
                "promote": {"min_labelled": 5, "tolerance": 0.02, "window_days": 14},
            }
        )
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.get_tracking_uri())
    out = tmp_path / "metrics/promote.json"
    unreachable = "postgresql://fraud@127.0.0.1:9/record"
    assert promote.main(["--record-url", unreachable, "--params", str(params)]) == 2
    record = f"sqlite:///{tmp_path / 'record.sqlite'}"
    assert promote.main(["--record-url", record, "--params", str(params), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["verdict"], report["challenger"], report["champion_after"]) == (
        "promote",
        second,
        second,
    )
    assert report["shadow"]["labelled"] == 9 and report["params"]["min_labelled"] == 5
