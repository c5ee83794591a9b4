"""``make loop`` in a bounded form: the production data loop end to end on the tests'
tiny data set, every piece for real (PostgreSQL, the service, the replay client, the
export, the Spark feature job, Feast, retraining with the registry's gate, the reload)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tools.data_loop import Initial, run
from tools.loop_steps import Loop

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_loop_learns_from_what_the_service_saw(
    tiny_data: Path, feast_repo: Path, tiny_training_set: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    loop = Loop(tmp_path / "loop", replay_days=2, next_days=2, rate=100.0)
    result = run(loop, Initial(tiny_data, feast_repo, tiny_training_set, tiny_bundle))
    steps = {step["step"].split(".")[0]: step for step in result["steps"]}
    assert sorted(steps) == [str(n) for n in range(1, 10)]

    history = steps["2"]
    assert history["decisions"] > 10_000 and 0 < history["labels"] < history["decisions"]
    replayed = steps["4"]
    stream = pd.concat(pd.read_parquet(p) for p in tiny_data.glob("v*/transactions.parquet"))
    assert replayed["answered"] > 100
    assert replayed["labels_posted"] > 0 and replayed["label_statuses"] == [200]
    # Everything the service answered and every label is in PostgreSQL.
    record: dict[str, Any] = replayed["record"]
    assert record["decisions"] == history["decisions"] + replayed["answered"]
    assert record["labels"] == history["labels"] + replayed["labels_posted"]

    exported = steps["5"]
    assert exported["exported"] == record["decisions"]
    assert exported["labelled"] == record["labels"]
    retrained = steps["7"]
    assert retrained["rows"] > 5_000 and retrained["frauds"] > 10
    assert retrained["challenger"] == "v2"
    assert 0 < retrained["test_auprc"] <= 1
    reload = steps["8"]
    if reload.get("reload") is not None:  # the gate promoted the challenger
        assert reload["reload"] == 200 and reload["serving"] != steps["1"]["model"]
    else:
        assert reload["serving"] == steps["1"]["model"]

    after = steps["9"]
    assert after["jobs"] == ["features", "materialize", "retrain"]
    assert {line.split("{")[0] for line in after["metrics"]} >= {
        "fraud_pipeline_last_success_timestamp_seconds", "fraud_record_spool_rows",
    }  # fmt: skip
    next_days = after["auprc_of_answers"]["next_days"]
    assert reload["serving"] in next_days  # the next days were scored by the model served
    assert len(stream) > 0
