"""Rule lists and the challenger's shadow scores on both engines, and the operators'
command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from system_of_record.__main__ import main
from system_of_record.rows import LabelRow, ShadowRow
from system_of_record.rule_lists import add_entry, entry_details, list_entries, remove_entry
from system_of_record.shadow import shadow_summary, write_shadow
from system_of_record.store import RecordStore
from tests.system_of_record.helpers import T0, decision, make_store

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    opened = make_store(request, tmp_path)
    yield opened
    opened.close()


def test_list_entries_are_added_once_removed_once_and_versioned(store: RecordStore) -> None:
    assert list_entries(store) == ("0", {})
    assert add_entry(store, "blocked_terminals", "T9", "ann", "skimmer", T0) == "added"
    assert add_entry(store, "blocked_terminals", "T9", "bob", "", T0) == "present"
    assert add_entry(store, "blocked_terminals", "T1", "ann", "", T0) == "added"
    assert add_entry(store, "vip_customers", "C7", "ann", "", T0) == "added"
    version, lists = list_entries(store)
    assert version == "3"
    assert lists == {"blocked_terminals": ["T1", "T9"], "vip_customers": ["C7"]}
    assert remove_entry(store, "blocked_terminals", "T9", "bob", T0) == "removed"
    assert remove_entry(store, "blocked_terminals", "T9", "bob", T0) == "absent"
    assert remove_entry(store, "nope", "T9", "bob", T0) == "absent"
    after, lists = list_entries(store)
    assert int(after) > int(version)  # only real changes move the version
    assert after == "4" and lists == {"blocked_terminals": ["T1"], "vip_customers": ["C7"]}
    assert add_entry(store, "blocked_terminals", "T9", "bob", "back", T0) == "added"
    assert list_entries(store)[0] == "5"
    details = {(entry["list"], entry["value"]): entry for entry in entry_details(store)}
    assert details["blocked_terminals", "T9"]["added_by"] == "bob"
    assert details["blocked_terminals", "T9"]["note"] == "back"


def shadow(i: int, version: str, decided: str, probability: float, minutes: int = 0) -> ShadowRow:
    return ShadowRow(
        f"tx-{i}", version, "m1", probability, "LOW", decided, T0 + timedelta(minutes=minutes)
    )


def test_shadow_summary_compares_the_challenger_with_the_champion(store: RecordStore) -> None:
    champion = ["approve", "review", "decline", "approve", "step_up", "approve"]
    store.write_decisions(
        # The answers a rule changed to decline; the champion MODEL decided ``d``.
        [
            decision(i, probability=i / 10, decided="decline", model_decided=d)
            for i, d in enumerate(champion)
        ]
    )
    store.write_labels(
        [LabelRow(f"tx-{i}", fraud, "chargeback", T0) for i, fraud in
         [(1, True), (2, True), (3, False), (5, False)]]
    )  # fmt: skip
    challenger = ["approve", "decline", "approve", "review", "step_up", "review"]
    probabilities = [0.1, 0.9, 0.2, 0.6, 0.7, 0.5]
    rows = [
        shadow(i, "m2", d, p, 1)
        for i, (d, p) in enumerate(zip(challenger, probabilities, strict=True))
    ]
    write_shadow(store, rows)
    write_shadow(store, [shadow(0, "m2", "decline", 0.99, 1)])  # a re-ship keeps the first
    write_shadow(store, [shadow(99, "m2", "decline", 0.99, 1)])  # no decision on record
    write_shadow(store, [shadow(0, "m3", "review", 0.4, -5), shadow(1, "m3", "review", 0.8, 2)])
    summary = shadow_summary(store, T0)
    assert [entry["challenger_version"] for entry in summary] == ["m2", "m3"]
    m2, m3 = summary
    # Agreement on tx-0 and tx-4; alerts 3 (champion) and 4 (challenger) of 6; labelled
    # tx-1 F, tx-2 F, tx-3 L, tx-5 L. Champion flags tx-1, tx-2 (both frauds); the
    # challenger flags tx-1 (fraud), tx-3 and tx-5 (legitimate) and misses tx-2.
    assert m2 == {
        "challenger_version": "m2", "rows": 6, "agreement": pytest.approx(2 / 6),
        "champion_alert_rate": 0.5, "challenger_alert_rate": pytest.approx(4 / 6),
        "labelled": 4, "frauds": 2,
        "champion_precision": 1.0, "champion_recall": 1.0,
        "challenger_precision": pytest.approx(1 / 3), "challenger_recall": 0.5,
        "champion_mean_probability": pytest.approx(0.25),
        "challenger_mean_probability": pytest.approx(0.5),
    }  # fmt: skip
    # m3 since T0: only tx-1 (tx-0 was scored before); both flag it, it is a fraud.
    assert (m3["rows"], m3["agreement"], m3["labelled"], m3["frauds"]) == (1, 1.0, 1, 1)
    assert (m3["champion_precision"], m3["challenger_recall"]) == (1.0, 1.0)
    assert shadow_summary(store, T0 + timedelta(hours=1)) == []


def test_shadow_summary_has_no_precision_without_labels(store: RecordStore) -> None:
    store.write_decisions([decision(0)])
    write_shadow(store, [shadow(0, "m2", "approve", 0.1)])
    (entry,) = shadow_summary(store, T0)
    assert (entry["labelled"], entry["champion_precision"], entry["challenger_recall"]) == (
        0, None, None,
    )  # fmt: skip


def test_the_command_line_edits_lists_and_shows_queue_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--url", f"sqlite:///{tmp_path / 'r.sqlite'}"]
    main(["lists", "add", "blocked_terminals", "T9", "--by", "ann", "--note", "skimmer", *url])
    main(["lists", "add", "blocked_terminals", "T9", *url])
    main(["lists", "remove", "vip_customers", "C1", *url])
    assert capsys.readouterr().out.split() == ["added", "present", "absent"]
    main(["lists", "show", *url])
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == "1"
    assert [(e["list"], e["value"], e["added_by"], e["note"]) for e in shown["entries"]] == [
        ("blocked_terminals", "T9", "ann", "skimmer")
    ]
    main(["review", "stats", *url])
    assert json.loads(capsys.readouterr().out) == {
        "open": 0, "claimed": 0, "resolved": 0, "oldest_open_seconds": None,
    }  # fmt: skip
    with pytest.raises(SystemExit):
        main(["lists", "add", "only_a_name", *url])
