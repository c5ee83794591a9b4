"""The vectorised batch path in process: transactions per second for batches of 1,000.

Times what the issue's batch target covers, with the service's own objects (loaded as the
lifespan loads them): the online lookup (views and velocity states), assembly, scoring
with the rule set, reason codes, and encoding the answers to JSON. Request parsing is timed
apart (pydantic's validation of the body is the same per transaction whatever the batch).
The answers are checked against the single-transaction path: every batch's
transactions scored one at a time, in time order, each seeing the earlier ones of its card
as the service's pending velocity state does (``merged_states``, the service's own merge),
must get the same JSON answers as in the batch.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import orjson

from app.core.config import Settings
from app.schemas import TransactionIn
from app.schemas.answers import answer
from app.services.loading import load_scoring
from app.services.scoring_service import ScoringService
from app.services.velocity import merged_states
from feature_repo.velocity import EMPTY, VelocityState

STAGES = ("lookup", "assembly", "scoring, rules and reasons", "encoding")


def _alone(service: ScoringService, transactions: Sequence[TransactionIn]) -> list[bytes]:
    """Each transaction's answer scored alone, in the given (time) order; the cards'
    earlier transactions are pending velocity state, as the service's tracker keeps them
    between requests (nothing is written to the store)."""
    version = service.predictor.version
    pending: dict[str, VelocityState] = {}
    out = []
    for t in transactions:
        found = service.lookup_blocking([t])
        if found.states is not None:
            stored = [found.states.get(t.customer_id, EMPTY)]
            found = replace(found, states=merged_states([t.customer_id], stored, pending))
        rows = service.rows([t], found)
        (p,) = service.predictor.predict(rows)
        for customer, event in rows.events:
            pending[customer] = pending.get(customer, EMPTY).add((event,))
        out.append(orjson.dumps(answer(t, p, version, 0.0)))
    return out


def measure(
    settings: Settings, bodies: Sequence[dict[str, Any]], size: int = 1000, rounds: int = 5
) -> dict[str, Any]:
    """Median seconds per stage over ``rounds`` passes of every whole batch of ``size``;
    ``tx_per_second`` from the median total; ``parity``: how many answers differ."""
    scoring = load_scoring(settings)
    service = scoring.service
    try:
        began = time.perf_counter()
        transactions = [TransactionIn.model_validate(b) for b in bodies]
        parse_us = (time.perf_counter() - began) / len(bodies) * 1e6
        batches = [
            sorted(transactions[i : i + size], key=lambda t: (t.epoch_seconds, t.transaction_id))
            for i in range(0, len(transactions) - size + 1, size)
        ]
        version = service.predictor.version
        samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        encoded: list[list[bytes]] = []
        gc.collect()
        cpu = 0.0
        for round_ in range(rounds + 1):  # the first pass warms up
            if round_ == 1:
                cpu = time.process_time()
            for batch in batches:
                t0 = time.perf_counter()
                found = service.lookup_blocking(batch)
                t1 = time.perf_counter()
                rows = service.rows(batch, found)
                t2 = time.perf_counter()
                predictions = service.predictor.predict(rows)
                t3 = time.perf_counter()
                body = orjson.dumps(
                    {
                        "results": [
                            answer(t, p, version, 0.0)
                            for t, p in zip(batch, predictions, strict=True)
                        ]
                    }
                )
                t4 = time.perf_counter()
                if round_ == 0:
                    encoded.append([orjson.dumps(a) for a in orjson.loads(body)["results"]])
                    continue
                for stage, seconds in zip(
                    STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True
                ):
                    samples[stage].append(seconds)
        cpu = time.process_time() - cpu
        checked = differing = 0
        for batch, answers in zip(batches, encoded, strict=True):
            alone = _alone(service, batch)
            checked += len(alone)
            differing += sum(1 for a, b in zip(alone, answers, strict=True) if a != b)
    finally:
        service.close()
    per_stage = {stage: float(np.median(values)) for stage, values in samples.items()}
    total = sum(per_stage.values())
    return {
        "batch_size": size,
        "batches": len(batches),
        "rounds": rounds,
        "tx_per_second": round(size / total, 0),
        "us_per_tx": {stage: round(s / size * 1e6, 2) for stage, s in per_stage.items()},
        "parse_us_per_tx": round(parse_us, 2),
        # CPU time of the whole process (every thread) per transaction: the steadiest
        # figure on a shared machine (the CI guard compares it)
        "cpu_us_per_tx": round(cpu / (rounds * len(batches) * size) * 1e6, 2),
        "parity": {"checked": checked, "differing": differing},
    }
