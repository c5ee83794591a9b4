"""The deployment's capacity figures come from the one measured number in results.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import capacity

ROOT = Path(__file__).resolve().parents[2]


def _results(saturation: float, p99_by_share: dict[int, float]) -> dict[str, Any]:
    levels = [
        {"share": s, "p99_ms": p99 + 5, "p99_on_time_ms": p99} for s, p99 in p99_by_share.items()
    ]
    service = {"saturation": {"throughput_rps": saturation}, "open_loop": levels}
    return {
        "machine": {"commit": "abc1234"},
        "deployed_store": "redis",
        "stores": {"redis": {"service": service}, "sqlite": {"service": service}},
    }


def test_the_committed_files_say_what_the_committed_benchmark_measured() -> None:
    results = json.loads((ROOT / capacity.RESULTS).read_text())
    figures = results.get("capacity") or capacity.derive(results)
    assert capacity.differences(figures, ROOT) == []
    assert figures == capacity.derive(results)  # the stored figures are the derived ones


def test_the_target_is_the_highest_share_within_budget_up_to_75() -> None:
    c = capacity.derive(_results(1000, {10: 2, 50: 6, 70: 9.9, 75: 10.5, 80: 30, 90: 200}))
    assert c["budget_share"] == 70
    assert c["target_utilization"] == 70
    assert c["within_budget"] is True
    assert c["rps_at_target"] == 700
    assert c["max_replicas"] == 15  # ceil(10,000 / 700)
    # one key may use a whole pod, never less than the HPA keeps a pod at
    assert (c["rate_limit_per_second"], c["rate_limit_burst"]) == (1000, 2000)


def test_the_target_never_passes_75_even_when_90_is_within_budget() -> None:
    c = capacity.derive(_results(2000, {10: 1, 75: 3, 90: 8}))
    assert c["target_utilization"] == 75
    assert c["rps_at_target"] == 1500
    assert c["max_replicas"] == 7


def test_a_budget_never_met_is_said_and_the_target_is_the_floor() -> None:
    c = capacity.derive(_results(400, {10: 12, 30: 20, 75: 90}))
    assert c["budget_share"] is None
    assert c["within_budget"] is False
    assert c["target_utilization"] == capacity.MIN_TARGET
    assert "p99 over 10 ms at every measured load" in capacity.sentence(c)


def test_write_then_check_round_trips_and_a_hand_edit_is_caught(tmp_path: Path) -> None:
    for path in (capacity.HPA, capacity.SETTINGS_ENV, capacity.DEPLOY_DOC, capacity.README):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    c = capacity.derive(_results(1234, {10: 1, 60: 9, 75: 11}))
    for path, text in capacity.rendered(c, tmp_path).items():
        (tmp_path / path).write_text(text)
    assert capacity.differences(c, tmp_path) == []
    hpa = (tmp_path / capacity.HPA).read_text()
    assert "averageUtilization: 60\n" in hpa and "maxReplicas: 14\n" in hpa
    assert "RATE_LIMIT_PER_SECOND=1200\n" in (tmp_path / capacity.SETTINGS_ENV).read_text()
    assert "1,234 req/s" in (tmp_path / capacity.README).read_text()
    (tmp_path / capacity.HPA).write_text(hpa.replace("maxReplicas: 14", "maxReplicas: 30"))
    assert capacity.differences(c, tmp_path) == [str(capacity.HPA)]


def test_a_file_without_its_marked_block_is_an_error(tmp_path: Path) -> None:
    for path in (capacity.HPA, capacity.SETTINGS_ENV, capacity.DEPLOY_DOC, capacity.README):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    (tmp_path / capacity.README).write_text("no block here\n")
    with pytest.raises(ValueError, match="no capacity block"):
        capacity.rendered(capacity.derive(_results(500, {10: 1})), tmp_path)
