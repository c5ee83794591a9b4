"""The model card stage on small synthetic inputs shaped like the real metrics files: numbers
copied exactly, plots copied and listed, the optional gate, and inputs that must fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.card_inputs import (
    GATE,
    SHAP_PLOTS,
    VERSION_KEY,
    bundle_spec,
    metrics_files,
    png,
    write_bundle,
    write_inputs,
)
from training import model_card


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """metrics/, models/bundle/ and reports/ as the pipeline leaves them, in miniature."""
    version = write_bundle(tmp_path / "models/bundle", bundle_spec())
    write_inputs(tmp_path, version)
    return tmp_path


def run(project: Path, out: str = "models/card") -> dict[str, Any]:
    model_card.main(
        [
            "--metrics-dir",
            str(project / "metrics"),
            "--bundle",
            str(project / "models/bundle"),
            "--reports-dir",
            str(project / "reports"),
            "--out",
            str(project / out),
        ]
    )
    card: dict[str, Any] = json.loads((project / out / "card.json").read_text())
    return card


def test_the_card_copies_every_number_exactly(project: Path) -> None:
    card = run(project)
    metrics = metrics_files(card["bundle_version"])
    assert card["format_version"] == 1
    assert datetime.fromisoformat(card["generated_at"]).utcoffset() is not None
    assert card["report"] == "report.html"

    training = card["training"]
    assert training["data_version"] == "19295a576abc48ce699e4502425d117a.dir"
    assert training["trained_at"] == "2026-11-23T07:40:34+00:00"
    assert training["rows"] == {"training_time": 222325, "refit": 222325}
    assert training["validation_auprc"] == {
        "ae": 0.4178,
        "classifier": 0.85926,
        "ensemble": 0.85979,
    }
    assert (training["labels"], training["defense"], training["imbalance_method"]) == (
        "clean",
        False,
        "none",
    )
    assert (training["features"], training["ensemble"], training["calibration"]) == (
        3,
        "stacking",
        "isotonic",
    )

    test, drifted = card["evaluation"]["test"], card["evaluation"]["drifted"]
    assert test["title"] == "Time-later test set (v0, last weeks)"
    assert drifted["title"] == "Drifted stream (v1)"
    for key in model_card.EVALUATION_KEYS:
        assert test[key] == metrics["evaluate"]["test"][key]
        assert drifted[key] == metrics["evaluate"]["drifted_v1"][key]
    assert (test["auprc"], test["rows"], drifted["auprc"]) == (0.8425, 9155, 0.74632)
    assert drifted["recall_by_scenario"] == {"card_testing": 0.97059}
    assert "ece_uncalibrated" not in test  # diagnostics stay in metrics/evaluate.json

    assert card["thresholds"] == {"critical": 0.51, "high": 0.11, "medium": 0.05}
    basis = card["cost_basis"]
    assert basis["cost_model"] == bundle_spec()["metadata"]["cost_model"]
    assert basis["alert_budget_per_day"] == 100
    assert basis["validation"] == {
        "cost": 21793.14,
        "approve_all_cost": 194898.57,
        "default_tiers_cost": 47872.519,
        "alerts_per_day": 95.14286,
    }
    assert basis["actions"] == {
        "low": "approve",
        "medium": "review",
        "high": "step_up",
        "critical": "decline",
    }
    assert "within 100 per day" in basis["explanation"]
    assert "out-of-fold cost 21,793 against 194,899" in basis["explanation"]


def test_the_card_says_how_the_model_was_chosen(project: Path) -> None:
    card = run(project)
    selection = card["selection"]
    train = metrics_files(card["bundle_version"])["train"]
    assert selection["title"] == "How the model was chosen"
    folds = selection["folds"]
    assert (folds["window_days"], folds["gap_days"], folds["refit"]) == (5, 7, True)
    assert [(f["fold"], f["window_rows"], f["window_fraud"]) for f in folds["folds"]] == [
        (1, 1511, 22),
        (2, 1510, 27),
    ]
    assert folds["folds"] == train["selection"]["folds"]
    search = selection["search"]
    assert (search["seed"], search["pruning"]) == (17, True)
    assert {k: search["classifier"][k] for k in ("trials", "complete", "pruned", "seconds")} == {
        "trials": 24,
        "complete": 19,
        "pruned": 5,
        "seconds": 412.3,
    }
    assert search["autoencoder"]["budget"] == {"trials": 0, "timeout_seconds": 300.0}

    imbalance = selection["imbalance"]
    assert imbalance["kept"] == "smote"
    assert imbalance["mean_fold_auprc"] == train["classifier"]["imbalance_comparison"]
    assert imbalance["why"] == (
        "smote had the best mean fold AUPRC of any strategy's best trial (0.7311; "
        "next none 0.7167)."
    )
    monotone = selection["monotone"]
    assert monotone["kept"] == "off"
    assert "with them scored 0.7010 mean fold AUPRC, without them 0.7311" in monotone["why"]
    fusion = selection["fusion"]
    assert fusion["kept"] == "stacking"
    assert fusion["candidates"] == train["ensemble"]["candidates"]
    assert (
        "(0.7350 ± 0.1350; autoencoder_only 0.4684, classifier_only 0.7167, weighted "
        in (fusion["why"])
    )
    calibration = selection["calibration"]
    assert calibration["kept"] == "platt"
    assert calibration["brier"]["isotonic"]["mean"] == 0.00829
    assert (
        "lowest leave-one-fold-out Brier score (0.00737; isotonic 0.00829)" in (calibration["why"])
    )
    assert selection["rounds"] == 38

    ablation = selection["ablation"]
    assert ablation["folds"] == train["ensemble"]["ablation"]
    assert ablation["test"]["kept"]["auprc"] == 0.8425
    assert ablation["test"]["classifier_only"]["auprc"] == 0.84316
    assert ablation["why"] == (
        "On the folds the autoencoder adds +0.0183 AUPRC to the classifier alone. On the "
        "test set the kept model scores 0.8425 AUPRC against 0.8432 for the classifier alone "
        "(-0.0007)."
    )


def test_reports_from_before_the_search_name_their_stage(project: Path) -> None:
    path = project / "metrics/evaluate.json"
    evaluate = json.loads(path.read_text())
    del evaluate["ablation"]
    path.write_text(json.dumps(evaluate))
    with pytest.raises(ValueError, match=r"evaluate.json lacks ablation: run `dvc repro evaluate`"):
        run(project)
    path = project / "metrics/train.json"
    train = json.loads(path.read_text())
    del train["selection"], train["search"]
    path.write_text(json.dumps(train))
    with pytest.raises(
        ValueError, match=r"train.json lacks selection, search: run `dvc repro train`"
    ):
        run(project)


def test_the_gate_is_the_evaluate_stages_record(project: Path) -> None:
    gate = run(project)["gate"]
    assert gate == {
        "promoted": True,
        "reason": "challenger AUPRC 0.8425 vs champion 0.8423 (tolerance 0.01): passes",
        "model_name": "fraud-ensemble",
        "version": "6",
        "champion_before": "4",
        "run_id": "9e6937c4ab084753a0412dedf89b0a62",
    }


def test_the_audit_sections_match_their_metrics(project: Path) -> None:
    audit = run(project)["audit"]
    shap = audit["shap"]
    assert len(shap["top_features"]) == 10
    assert shap["top_features"][0] == {"feature": "home_distance_km", "mean_abs_shap": 1.0}
    assert shap["top_features"][9] == {"feature": "feature_09", "mean_abs_shap": 0.1}
    assert "home_distance_km (1.000), feature_01 (0.500), feature_02 (0.333)" in shap["summary"]
    assert shap["plots"] == [f"shap/{n}" for n in SHAP_PLOTS]

    fairness = audit["fairness"]
    assert fairness["passed"] is True
    assert [a["name"] for a in fairness["attributes"]] == ["age_band", "gender"]
    assert fairness["attributes"][1] == {
        "name": "gender",
        "passed": True,
        "judged": True,
        "dpd": 0.000152468,
        "eod": 0.0333791,
        "dpd_all_groups": 0.000152468,
        "eod_all_groups": 0.0333791,
        "violations": [],
    }
    assert fairness["summary"].startswith("The fairness gate passes")
    assert fairness["plots"] == ["fairness/a.png", "fairness/g.png"]

    drift = audit["drift"]
    assert (drift["alert"], drift["drift_share"], drift["features"]) == (True, 0.6667, 3)
    assert drift["drifted"] == ["home_distance_km", "log_amount"]
    assert drift["alert_rate"] == {"reference": 0.0240719, "current": 0.031945}
    assert drift["summary"].startswith("2 of 3 features drift")
    assert "from 2.41 % to 3.19 %" in drift["summary"]

    poisoning = audit["poisoning"]
    assert len(poisoning["rows"]) == 6
    # Sorted like the report's table: flip model, rate, defense off before on.
    assert [(r["labels"], r["defense"]) for r in poisoning["rows"][:3]] == [
        ("clean", False),
        ("clean", True),
        ("v0_train_hidden_fraud_20pct", False),
    ]
    uniform_off = poisoning["rows"][4]
    assert uniform_off == {
        "labels": "v0_train_uniform_20pct",
        "flip_model": "uniform",
        "rate": 0.2,
        "defense": False,
        "auprc": 0.8039,
        "recall_at_budget": 0.8526,
        "precision_at_alert_tier": 0.573,
        "recall_at_alert_tier": 0.8559,
        "f1_at_alert_tier": 0.6865,
        "flipped_labels": 200,
    }
    assert poisoning["rows"][5]["flagged"] == 466
    # The report's headline: worst change without the defense, 0.8039 - 0.8428.
    assert poisoning["worst_auprc_change"] == -0.0389
    assert poisoning["summary"].startswith("Worst AUPRC change without the defense: -0.0389")
    assert poisoning["k"] == 10


def test_plots_are_copied_listed_and_described(project: Path) -> None:
    card = run(project)
    out = project / "models/card"
    ids = [p["id"] for p in card["plots"]]
    assert ids == [
        *(f"shap/{n}" for n in SHAP_PLOTS),
        "fairness/a.png",
        "fairness/g.png",
        "drift/psi.png",
        "drift/scores.png",
        "poisoning.png",
    ]
    for plot in card["plots"]:
        assert set(plot) == {"id", "title", "alt", "section"}
        assert plot["title"] and len(plot["alt"]) > 40
        copied = out / "plots" / plot["id"]
        assert copied.read_bytes() == (project / "reports" / plot["id"]).read_bytes()
    sections = {p["id"]: p["section"] for p in card["plots"]}
    for name, section in card["audit"].items():
        assert all(sections[i] == name for i in section["plots"])
    assert sum(len(s["plots"]) for s in card["audit"].values()) == len(ids)
    # Only what the stages list is copied, and nothing but PNGs and the report.
    assert not (out / "plots/shap/not_listed.png").exists()
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted(["card.json", "report.html", *(f"plots/{i}" for i in ids)])
    assert (out / "report.html").read_text() == (project / "reports/report.html").read_text()
    by_id = {p["id"]: p for p in card["plots"]}
    assert "TX0000324275" in by_id["shap/local_caught_fraud.png"]["alt"]
    assert "+4.953" in by_id["shap/local_caught_fraud.png"]["alt"]
    assert "68.9×" in by_id["shap/autoencoder_errors.png"]["alt"]
    assert "(18-25, 26-40)" in by_id["fairness/a.png"]["alt"]
    assert "recall at 10 alerts per day" in by_id["poisoning.png"]["alt"]


def test_the_bundle_version_is_the_served_model_version(project: Path) -> None:
    from fraud_model import bundle

    card = run(project)
    directory = project / "models/bundle"
    assert card["bundle_version"] == bundle._version(directory)
    assert (model_card.SPEC_FILE, model_card.MANIFEST_FILE) == (
        bundle.SPEC_FILE,
        bundle.MANIFEST_FILE,
    )


def test_without_gate_json_the_gate_is_null(project: Path) -> None:
    (project / "metrics/gate.json").unlink()
    card = run(project)
    assert card["gate"] is None
    assert card["evaluation"]["test"]["auprc"] == 0.8425


def test_a_gate_of_another_bundle_is_not_this_bundles(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "metrics/gate.json").write_text(json.dumps({**GATE, VERSION_KEY: "0123456789ab"}))
    assert run(project)["gate"] is None
    assert "is for bundle 0123456789ab" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("path", "stage"),
    [
        ("metrics/evaluate.json", "evaluate"),
        ("metrics/train.json", "train"),
        ("metrics/shap.json", "explain"),
        ("metrics/fairness.json", "fairness"),
        ("metrics/drift.json", "drift"),
        ("metrics/poisoning.json", "poisoning"),
        ("models/bundle/MANIFEST.json", "train"),
        ("models/bundle/bundle.json", "train"),
        ("reports/report.html", "audit"),
        ("reports/shap/bar.png", "explain"),
        ("reports/fairness/g.png", "fairness"),
        ("reports/drift/scores.png", "drift"),
        ("reports/poisoning.png", "poisoning"),
    ],
)
def test_a_missing_required_input_names_the_stage_to_run(
    project: Path, path: str, stage: str
) -> None:
    (project / path).unlink()
    with pytest.raises(FileNotFoundError, match=rf"{path} is missing: run `dvc repro {stage}`"):
        run(project)
    assert not (project / "models/card").exists()


def test_metrics_of_another_bundle_fail(project: Path) -> None:
    path = project / "metrics/drift.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), VERSION_KEY: "0123456789ab"}))
    with pytest.raises(
        ValueError, match=r"drift.json describes bundle 0123456789ab.*dvc repro drift"
    ):
        run(project)


def test_a_bundle_json_that_does_not_match_its_manifest_fails(project: Path) -> None:
    spec = bundle_spec()
    spec["tiers"]["critical"] = 0.99
    (project / "models/bundle/bundle.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="does not match MANIFEST.json"):
        run(project)


def test_fixed_tiers_are_explained_as_fixed(project: Path) -> None:
    path = project / "metrics/train.json"
    train = json.loads(path.read_text())
    train["decision"] = {
        "optimised": False,
        "tiers": {"critical": 0.85, "high": 0.6, "medium": 0.3},
        "validation_approve_all_cost": 194898.57,
        "validation_cost": 47872.519,
        "validation_cost_default_tiers": 47872.519,
    }
    path.write_text(json.dumps(train))
    basis = run(project)["cost_basis"]
    assert basis["optimised"] is False
    assert "fixed `train.decision.tiers`" in basis["explanation"]
    assert "out-of-fold cost 47,873 against 194,899" in basis["explanation"]
    assert "alerts_per_day" not in basis["validation"]


def test_a_failed_fairness_gate_is_reported_in_the_card(project: Path) -> None:
    path = project / "metrics/fairness.json"
    fairness = json.loads(path.read_text())
    fairness["passed"] = False
    fairness["violations"] = ["gender: DPD 0.0200 > 0.01"]
    fairness["attributes"]["gender"].update(
        passed=False, dpd=0.02, violations=["gender: DPD 0.0200 > 0.01"]
    )
    fairness["attributes"]["age_band"]["judged"] = False
    path.write_text(json.dumps(fairness))
    section = run(project)["audit"]["fairness"]
    assert section["passed"] is False
    assert section["attributes"][1]["dpd"] == 0.02
    assert section["summary"] == (
        "The fairness gate FAILS: gender: DPD 0.0200 > 0.01 "
        "(not judged, too few large groups: age_band)."
    )


def test_unsafe_or_non_png_plots_are_refused(project: Path) -> None:
    reports = project / "reports"
    for bad in ("../metrics/drift.json", "/etc/passwd.png", "shap/bar.svg"):
        with pytest.raises(ValueError, match="unsafe or non-PNG plot id"):
            model_card.plot_source(reports, {"id": bad, "section": "shap"})
    (reports / "shap/bar.png").write_text("<svg/>")
    with pytest.raises(ValueError, match="is not a PNG file"):
        model_card.plot_source(reports, {"id": "shap/bar.png", "section": "shap"})


def test_a_rerun_replaces_the_card_but_never_another_directory(project: Path) -> None:
    run(project)
    stale = project / "models/card/plots/shap/old.png"
    stale.write_bytes(png())
    run(project)
    assert not stale.exists()
    other = project / "models/other"
    other.mkdir()
    (other / "keep.txt").write_text("not a card")
    with pytest.raises(FileExistsError, match="is not a model card"):
        run(project, out="models/other")
    assert (other / "keep.txt").read_text() == "not a card"


def test_build_card_is_pure(project: Path) -> None:
    inputs = model_card.read_inputs(project / "metrics", project / "models/bundle")
    moment = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    first = model_card.build_card(inputs, moment)
    assert first == model_card.build_card(inputs, moment)
    assert first["generated_at"] == "2026-11-23T10:00:00+00:00"
    assert not (project / "models/card").exists()


def test_recall_by_scenario_is_optional(project: Path) -> None:
    path = project / "metrics/evaluate.json"
    evaluate = json.loads(path.read_text())
    del evaluate["drifted_v1"]["recall_by_scenario"]
    path.write_text(json.dumps(evaluate))
    card = run(project)
    assert "recall_by_scenario" not in card["evaluation"]["drifted"]
    assert card["evaluation"]["test"]["recall_by_scenario"]["large_amount"] == 0.67411


def test_a_metrics_file_without_a_required_number_names_its_stage(project: Path) -> None:
    path = project / "metrics/evaluate.json"
    evaluate = json.loads(path.read_text())
    del evaluate["test"]["ece"]
    path.write_text(json.dumps(evaluate))
    with pytest.raises(ValueError, match=r"evaluate.json test lacks ece: run `dvc repro evaluate`"):
        run(project)
