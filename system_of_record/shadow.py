"""A challenger model's scores beside the champion model's decisions.

:func:`write_shadow` records what a challenger scored (one row per transaction and
challenger version, idempotent); :func:`shadow_summary` compares it with the champion's
decisions on record, and with the labels that have arrived. A shadow row whose decision
is not on record yet is left out of the comparison until it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from system_of_record.rows import ShadowRow
from system_of_record.store import RecordStore

INSERT_SHADOW = (
    "INSERT INTO shadow_scores (transaction_id, challenger_version, champion_version, "
    "fraud_probability, risk_level, decision, scored_at) VALUES (%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (transaction_id, challenger_version) DO NOTHING"
)
# "Flagged" = any decision but approve. The champion's side is its MODEL's own decision
# (before the rule set), so the two models are compared, not the policy around them; a
# decision recorded before rules existed has no model_decision and is its own. CASE WHEN
# l.is_fraud works on PostgreSQL's boolean and SQLite's 0/1 alike.
SUMMARY = (
    "SELECT s.challenger_version, COUNT(*), "
    "SUM(CASE WHEN s.decision = d.decision THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN d.decision <> 'approve' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN s.decision <> 'approve' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN l.is_fraud IS NOT NULL THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN l.is_fraud THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN l.is_fraud IS NOT NULL AND d.decision <> 'approve' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN l.is_fraud AND d.decision <> 'approve' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN l.is_fraud IS NOT NULL AND s.decision <> 'approve' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN l.is_fraud AND s.decision <> 'approve' THEN 1 ELSE 0 END), "
    "AVG(d.fraud_probability), AVG(s.fraud_probability) "
    "FROM shadow_scores s JOIN (SELECT transaction_id, fraud_probability, "
    "CASE WHEN model_decision IS NULL OR model_decision = '' THEN decision "
    "ELSE model_decision END AS decision FROM decisions) d "
    "ON d.transaction_id = s.transaction_id "
    "LEFT JOIN labels l ON l.transaction_id = s.transaction_id "
    "WHERE s.scored_at >= %s GROUP BY s.challenger_version ORDER BY s.challenger_version"
)


def write_shadow(store: RecordStore, rows: Sequence[ShadowRow]) -> None:
    """Record challenger scores; a (transaction, challenger version) on record keeps its
    first row."""
    if not rows:
        return
    values = [row._replace(scored_at=store.bind_time(row.scored_at)) for row in rows]
    with store.transaction() as cursor:
        cursor.executemany(store.sql(INSERT_SHADOW), values)


def shadow_summary(store: RecordStore, since: datetime) -> list[dict[str, Any]]:
    """Per challenger version scored since ``since``: rows, agreement (share of equal
    decisions), champion and challenger alert rates (decision != approve), labelled rows
    and frauds among them, each model's precision and recall of "flagged" on labelled
    rows (None when undefined) and mean probabilities."""
    with store.transaction() as cursor:
        cursor.execute(store.sql(SUMMARY), (store.bind_time(since),))
        rows = cursor.fetchall()
    summary = []
    for row in rows:
        version, n, agree, champ_alerts, chall_alerts, labelled, frauds = row[:7]
        champ_flagged, champ_hits, chall_flagged, chall_hits = (int(v or 0) for v in row[7:11])
        champ_mean, chall_mean = row[11:13]
        n, labelled, frauds = int(n), int(labelled or 0), int(frauds or 0)
        summary.append(
            {
                "challenger_version": version,
                "rows": n,
                "agreement": int(agree or 0) / n,
                "champion_alert_rate": int(champ_alerts or 0) / n,
                "challenger_alert_rate": int(chall_alerts or 0) / n,
                "labelled": labelled,
                "frauds": frauds,
                "champion_precision": _share(champ_hits, champ_flagged),
                "champion_recall": _share(champ_hits, frauds),
                "challenger_precision": _share(chall_hits, chall_flagged),
                "challenger_recall": _share(chall_hits, frauds),
                "champion_mean_probability": None if champ_mean is None else float(champ_mean),
                "challenger_mean_probability": float(chall_mean),
            }
        )
    return summary


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
