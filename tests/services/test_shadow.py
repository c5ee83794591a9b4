"""The challenger in shadow: off the request path, bounded, and counted."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.services.metrics import ServiceMetrics
from app.services.shadow import ShadowResult, ShadowScorer, load_challenger
from fraud_model.bundle import load_bundle
from fraud_model.decisions import DECISIONS, RISK_LEVELS
from fraud_model.model import ModelBundle
from fraud_model.scorer import EnsembleScorer

pytestmark = pytest.mark.integration  # the tiny bundle is trained through the real Feast


@pytest.fixture(scope="module")
def bundle(tiny_bundle: Path) -> ModelBundle:
    return load_bundle(tiny_bundle)


def _rows(bundle: ModelBundle, n: int, seed: int = 0) -> np.ndarray:
    """Random transactions around the bundle's defaults, with some features missing."""
    rng = np.random.default_rng(seed)
    scale = np.maximum(np.abs(bundle.fill_values), 1.0)
    raw = bundle.fill_values + rng.normal(0.0, 2.0, (n, len(bundle.features))) * scale
    raw[rng.random(raw.shape) < 0.05] = np.nan
    return raw


def _ids(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _submit(
    scorer: ShadowScorer, raw: np.ndarray, prefix: str = "t", decision: str = "approve"
) -> None:
    n = raw.shape[0]
    scorer.submit(_ids(n, prefix), raw, "champ-1", [decision] * n, [0.1] * n)


def test_scores_equal_the_ensemble_scorer_and_carry_the_champion(bundle: ModelBundle) -> None:
    got: list[ShadowResult] = []
    scorer = ShadowScorer(bundle, got.extend, chunk_rows=7)
    first, second = _rows(bundle, 20, 1), _rows(bundle, 13, 2)
    _submit(scorer, first, "a")
    scorer.submit(_ids(13, "b"), second, "champ-2", ["decline"] * 13, [0.9] * 13)
    scorer.close(5.0)

    expected = EnsembleScorer(bundle).score(np.vstack([first, second]))
    assert [r.transaction_id for r in got] == _ids(20, "a") + _ids(13, "b")
    np.testing.assert_allclose([r.fraud_probability for r in got], expected.probability)
    assert [r.risk_level for r in got] == expected.risk_levels
    assert [r.decision for r in got] == [DECISIONS[RISK_LEVELS[i]] for i in expected.level_index]
    assert {r.challenger_version for r in got} == {bundle.version}
    assert [r.champion_version for r in got] == ["champ-1"] * 20 + ["champ-2"] * 13
    assert [r.champion_decision for r in got] == ["approve"] * 20 + ["decline"] * 13
    assert [r.champion_probability for r in got] == [0.1] * 20 + [0.9] * 13
    agreed = sum(r.decision == r.champion_decision for r in got)
    stats = scorer.stats()
    assert stats["submitted"] == 33 and stats["scored"] == 33 and stats["queued_rows"] == 0
    assert stats["agreed"] == agreed and stats["disagreed"] == 33 - agreed


def test_submit_never_blocks_on_a_slow_sink_and_drops_when_full(bundle: ModelBundle) -> None:
    entered = threading.Event()

    def slow_sink(results: list[ShadowResult]) -> None:
        if not entered.is_set():
            entered.set()
            time.sleep(1.0)

    metrics = ServiceMetrics()
    scorer = ShadowScorer(bundle, slow_sink, max_queued_rows=10, metrics=metrics)
    _submit(scorer, _rows(bundle, 4), "a")
    assert entered.wait(5.0)  # the worker is now inside the sink for a second
    walls = []
    for prefix, n in (("b", 6), ("c", 1), ("d", 3)):
        start = time.perf_counter()
        _submit(scorer, _rows(bundle, n), prefix)
        walls.append(time.perf_counter() - start)
    assert max(walls) < 0.05, walls
    stats = scorer.stats()
    assert stats["dropped"] == {"full": 4, "busy": 0, "stopped": 0, "error": 0}
    assert stats["queued_rows"] == 10 and stats["submitted"] == 14
    assert metrics.registry.get_sample_value("fraud_shadow_dropped_total", {"reason": "full"}) == 4
    assert metrics.registry.get_sample_value("fraud_shadow_queue_rows") == 10
    scorer.close(5.0)
    assert scorer.stats()["scored"] == 10


def test_busy_and_malformed_submissions_are_dropped_with_their_reason(bundle: ModelBundle) -> None:
    busy = [True]
    got: list[ShadowResult] = []
    scorer = ShadowScorer(bundle, got.extend, busy=lambda: busy[0])
    _submit(scorer, _rows(bundle, 5))
    scorer.submit(["x"], _rows(bundle, 2), "champ-1", ["approve"], [0.1])  # 1 id, 2 rows
    busy[0] = False
    _submit(scorer, _rows(bundle, 3))
    scorer.close(5.0)
    stats = scorer.stats()
    assert stats["dropped"] == {"full": 0, "busy": 5, "stopped": 0, "error": 1}
    assert stats["scored"] == 3 and len(got) == 3


def test_submit_never_raises_into_the_request_path(bundle: ModelBundle) -> None:
    scorer = ShadowScorer(bundle, lambda results: None, busy=lambda: 1 / 0 > 0)
    _submit(scorer, _rows(bundle, 2))  # busy() raises: logged, nothing queued
    assert scorer.stats()["queued_rows"] == 0
    scorer.close(1.0)


def test_a_failing_sink_or_scorer_is_survived_and_counted(bundle: ModelBundle) -> None:
    calls: list[int] = []
    got: list[ShadowResult] = []

    def flaky_sink(results: list[ShadowResult]) -> None:
        calls.append(len(results))
        if len(calls) == 1:
            raise OSError("record unreachable")
        got.extend(results)

    metrics = ServiceMetrics()
    scorer = ShadowScorer(bundle, flaky_sink, metrics=metrics)
    _submit(scorer, _rows(bundle, 4), "a")
    _wait(lambda: scorer.stats()["queued_rows"] == 0)
    real_score = scorer._scorer.score

    def broken(raw: np.ndarray) -> None:
        raise ValueError("scorer broke")

    scorer._scorer.score = broken  # type: ignore[assignment,method-assign]
    _submit(scorer, _rows(bundle, 2), "b")
    _wait(lambda: scorer.stats()["queued_rows"] == 0)
    scorer._scorer.score = real_score  # type: ignore[method-assign]
    _submit(scorer, _rows(bundle, 3), "c")
    scorer.close(5.0)
    stats = scorer.stats()
    assert stats["dropped"]["error"] == 6 and stats["scored"] == 3
    assert [r.transaction_id for r in got] == _ids(3, "c")
    assert metrics.registry.get_sample_value("fraud_shadow_dropped_total", {"reason": "error"}) == 6
    assert metrics.registry.get_sample_value("fraud_shadow_scored_total") == 3


def test_close_drains_the_queue_then_refuses(bundle: ModelBundle) -> None:
    got: list[ShadowResult] = []

    def slow_sink(results: list[ShadowResult]) -> None:
        time.sleep(0.02)
        got.extend(results)

    scorer = ShadowScorer(bundle, slow_sink, chunk_rows=5)
    for k in range(6):
        _submit(scorer, _rows(bundle, 5, k), f"p{k}-")
    scorer.close(5.0)
    assert len(got) == 30 and not scorer._thread.is_alive()
    _submit(scorer, _rows(bundle, 2), "late")
    stats = scorer.stats()
    assert stats["scored"] == 30 and stats["dropped"]["stopped"] == 2


def test_close_past_its_timeout_drops_what_is_left(bundle: ModelBundle) -> None:
    gate = threading.Event()

    def gated_sink(results: list[ShadowResult]) -> None:
        gate.wait(5.0)

    scorer = ShadowScorer(bundle, gated_sink, chunk_rows=4)
    _submit(scorer, _rows(bundle, 8), "a")  # two chunks: the first waits at the gate
    _submit(scorer, _rows(bundle, 3), "b")
    _wait(lambda: scorer.stats()["queued_rows"] == 11)
    scorer.close(0.1)
    gate.set()
    _wait(lambda: not scorer._thread.is_alive())
    stats = scorer.stats()
    assert stats["queued_rows"] == 0
    assert stats["scored"] + stats["dropped"]["stopped"] == 11
    assert stats["dropped"]["stopped"] >= 4


def test_metrics_hold_the_agreement_matrix_and_probabilities(bundle: ModelBundle) -> None:
    got: list[ShadowResult] = []
    metrics = ServiceMetrics()
    scorer = ShadowScorer(bundle, got.extend, metrics=metrics)
    assert metrics.registry.get_sample_value("fraud_shadow_loaded") == 1
    raw = _rows(bundle, 40, 7)
    champion = ["approve", "review", "step_up", "decline"] * 10
    scorer.submit(_ids(40), raw, "champ-1", champion, [0.5] * 40)
    scorer.close(5.0)
    value = metrics.registry.get_sample_value
    assert value("fraud_shadow_loaded") == 0 and value("fraud_shadow_queue_rows") == 0
    assert value("fraud_shadow_scored_total") == 40
    probability = EnsembleScorer(bundle).score(raw).probability
    assert value("fraud_shadow_probability_count") == 40
    assert value("fraud_shadow_probability_sum") == pytest.approx(probability.sum())
    assert value("fraud_shadow_probability_bucket", {"le": "0.5"}) == (probability <= 0.5).sum()
    cells = _count(champion, got)
    assert len(cells) >= 4  # champion decisions of every kind
    for (c, d), n in cells.items():
        assert value("fraud_shadow_decisions_total", {"champion": c, "challenger": d}) == n
    assert scorer.stats()["agreed"] == sum(n for (c, d), n in cells.items() if c == d)


def _count(champion: list[str], got: list[ShadowResult]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for c, r in zip(champion, got, strict=True):
        out[(c, r.decision)] = out.get((c, r.decision), 0) + 1
    return out


def test_load_challenger_refuses_without_raising(
    bundle: ModelBundle, tiny_bundle: Path, tmp_path: Path
) -> None:
    missing = load_challenger(str(tmp_path / "nowhere"), None, None, "the FeatureService")
    assert missing.bundle is None and "no bundle directory" in (missing.problem or "")

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_bundle, corrupt)
    (corrupt / "classifier.txt").write_text("not a forest")
    refused = load_challenger(str(corrupt), None, None, "the FeatureService")
    assert refused.bundle is None and refused.problem

    other = [*bundle.features[1:], "unknown_feature"]
    wrong = load_challenger(str(tiny_bundle), None, other, "fraud_detection_v9")
    assert wrong.bundle is None and "fraud_detection_v9" in (wrong.problem or "")

    good = load_challenger(str(tiny_bundle), None, bundle.features, "the FeatureService")
    assert good.bundle is not None and good.problem is None
    assert good.bundle.version == bundle.version


@pytest.mark.parametrize(("linger", "calls"), [(0.5, 1), (0.0, 5)])
def test_submissions_within_the_linger_are_scored_in_one_call(
    bundle: ModelBundle, linger: float, calls: int
) -> None:
    """Requests arriving one by one are scored as one group (one call, one sink write)
    when they come within ``linger_s`` of the first; without a linger, each alone."""
    batches: list[int] = []
    scorer = ShadowScorer(bundle, lambda rows: batches.append(len(rows)), linger_s=linger)
    for i in range(5):
        _submit(scorer, _rows(bundle, 1, i), f"s{i}-")
        if linger == 0.0:
            _wait(lambda n=i: sum(batches) == n + 1)  # scored before the next comes
    _wait(lambda: sum(batches) == 5)
    scorer.close(5.0)
    assert len(batches) == calls, batches
