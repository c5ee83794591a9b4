"""Stage ``model_card``: the serving bundle's card, one self-contained directory.

Reads what ``train``, ``evaluate`` and the audit stages wrote (``metrics/*.json``, the
bundle's ``bundle.json`` and ``MANIFEST.json``, the audit plots under ``reports/``) and
writes ``models/card/``: ``card.json`` (schema in docs/model-card.md), the plots under
``plots/`` and the audit's standalone ``report.html``. The service image copies it next to
``models/bundle/`` and shows it on its Model page. It only reads and copies: every number is
the one its stage wrote, and every input must describe the same bundle. ``metrics/gate.json``
is optional (``evaluate --no-mlflow`` does not write it); every other input is required and
a missing one names the stage to run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fraud_model.decisions import DECISIONS
from training.reporting.model_selection import selection_section

FORMAT_VERSION = 1
# The bundle's file names (fraud_model/bundle.py, which imports LightGBM).
SPEC_FILE = "bundle.json"
MANIFEST_FILE = "MANIFEST.json"
REPORT_FILE = "report.html"
CARD_FILE = "card.json"
PLOTS_DIR = "plots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Each metrics file and the stage that writes it (the SHAP metrics come from `explain`).
METRICS_STAGES = {
    "evaluate": "evaluate",
    "train": "train",
    "shap": "explain",
    "fairness": "fairness",
    "drift": "drift",
    "poisoning": "poisoning",
}
# The metrics that describe the bundle itself (poisoning trains its own variants).
BUNDLE_METRICS = ("evaluate", "train", "shap", "fairness", "drift")
# The plots' sections, by the reports/ path they come from.
PLOT_STAGES = {
    "shap": "explain",
    "fairness": "fairness",
    "drift": "drift",
    "poisoning": "poisoning",
}
EVALUATION_KEYS = (
    "rows",
    "days",
    "fraud",
    "auprc",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "alerts",
    "alerts_per_day",
    "precision_at_k",
    "card_precision_at_k",
    "recall_at_k",
    "k",
    "cost",
    "approve_all_cost",
    "cost_saving",
    "brier",
    "ece",
    "decisions",
    "members",
)
# Only when the data names each fraud's scenario (the synthetic data does, external sets do not).
OPTIONAL_EVALUATION_KEYS = ("recall_by_scenario",)
EVALUATION_TITLES = {
    "test": ("test", "Time-later test set (v0, last weeks)"),
    "drifted": ("drifted_v1", "Drifted stream (v1)"),
}
POISONING_KEYS = (
    "labels",
    "flip_model",
    "rate",
    "defense",
    "auprc",
    "recall_at_budget",
    "precision_at_alert_tier",
    "recall_at_alert_tier",
    "f1_at_alert_tier",
    "flipped_labels",
    "flagged",
    "flagged_precision",
    "flagged_recall",
)
SHAP_TOP = 10


@dataclass(frozen=True)
class CardInputs:
    """Everything the card is built from, as read from disk."""

    metrics: dict[str, dict[str, Any]]  # by METRICS_STAGES key
    bundle: dict[str, Any]  # bundle.json
    bundle_version: str  # what the service reports as model_version
    gate: dict[str, Any] | None  # metrics/gate.json, when evaluate wrote one


def bundle_version(bundle_dir: Path) -> str:
    """The served ``model_version``: the first 12 hex digits of the manifest's SHA-256."""
    return hashlib.sha256((bundle_dir / MANIFEST_FILE).read_bytes()).hexdigest()[:12]


def _require(path: Path, stage: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `dvc repro {stage}` first")
    return path


def read_inputs(metrics_dir: Path, bundle_dir: Path) -> CardInputs:
    """Read the metrics and the bundle's spec; a missing file names the stage to run."""
    metrics = {
        name: json.loads(_require(metrics_dir / f"{name}.json", stage).read_text())
        for name, stage in METRICS_STAGES.items()
    }
    manifest = json.loads(_require(bundle_dir / MANIFEST_FILE, "train").read_text())
    spec_bytes = _require(bundle_dir / SPEC_FILE, "train").read_bytes()
    if hashlib.sha256(spec_bytes).hexdigest() != manifest.get("files", {}).get(SPEC_FILE):
        raise ValueError(
            f"{bundle_dir / SPEC_FILE} does not match {MANIFEST_FILE}: "
            "run `dvc checkout models/bundle` or `dvc repro train`"
        )
    gate_path = metrics_dir / "gate.json"
    gate = json.loads(gate_path.read_text()) if gate_path.is_file() else None
    return CardInputs(metrics, json.loads(spec_bytes), bundle_version(bundle_dir), gate)


def pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def _check_versions(inputs: CardInputs) -> None:
    for name in BUNDLE_METRICS:
        found = inputs.metrics[name].get("bundle_version")
        if found != inputs.bundle_version:
            raise ValueError(
                f"{name}.json describes bundle {found}, models/bundle is "
                f"{inputs.bundle_version}: run `dvc repro {METRICS_STAGES[name]}`"
            )


def training_section(bundle: dict[str, Any]) -> dict[str, Any]:
    """Provenance of the bundle, from its own metadata."""
    meta = bundle["metadata"]
    return {
        "data_version": meta["data_version"],
        "trained_at": meta["trained_at"],
        "feature_service": meta["feature_service"],
        "labels": meta.get("labels", "clean"),
        "defense": meta["defense"],
        "imbalance_method": meta["imbalance_method"],
        "rows": dict(meta["rows"]),
        "validation_auprc": {k: meta["validation"][k] for k in ("ae", "classifier", "ensemble")},
        "features": len(bundle["features"]),
        "ensemble": bundle["ensemble"]["method"],
        "calibration": bundle["calibration"]["method"],
    }


def evaluation_section(evaluate: dict[str, Any]) -> dict[str, Any]:
    """Quality on the time-later test set and on the drifted stream, as evaluate wrote it."""
    section = {}
    for name, (source, title) in EVALUATION_TITLES.items():
        part = evaluate[source]
        missing = [k for k in EVALUATION_KEYS if k not in part]
        if missing:
            raise ValueError(
                f"evaluate.json {source} lacks {', '.join(missing)}: run `dvc repro evaluate`"
            )
        keys = EVALUATION_KEYS + tuple(k for k in OPTIONAL_EVALUATION_KEYS if k in part)
        section[name] = {"title": title, **{k: part[k] for k in keys}}
    return section


def cost_basis(bundle: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    """The cost model and budget behind the thresholds, and how training chose them."""
    meta, decision = bundle["metadata"], train["decision"]
    budget = meta["alert_budget_per_day"]
    validation = {
        "cost": decision["validation_cost"],
        "approve_all_cost": decision["validation_approve_all_cost"],
        "default_tiers_cost": decision["validation_cost_default_tiers"],
    }
    if "alerts_per_day" in decision:
        validation["alerts_per_day"] = decision["alerts_per_day"]
    actions = ", ".join(
        f"{level.lower()} → {action}" for level, action in DECISIONS.items() if level != "LOW"
    )
    tiers = (
        "Each threshold is the calibrated fraud probability at or above which a payment enters "
        f"its tier ({actions}; below medium → approve)."
    )
    if decision["optimised"]:
        how = (
            "Training chose the three thresholds that minimise the total cost of these "
            "decisions on the time folds' out-of-fold windows under this cost model (a fraud "
            "that gets through costs its amount), among those that keep alerts (every decision but "
            f"approve) within {budget:g} per day"
        )
    else:
        how = (
            "They are the fixed `train.decision.tiers` of params.yaml (cost optimisation was "
            "off); the cost model only prices their decisions"
        )
    explanation = (
        f"{tiers} {how}: out-of-fold cost {validation['cost']:,.0f} against "
        f"{validation['approve_all_cost']:,.0f} for approving everything."
    )
    return {
        "cost_model": meta["cost_model"],
        "alert_budget_per_day": budget,
        "optimised": decision["optimised"],
        "actions": {level.lower(): action for level, action in DECISIONS.items()},
        "validation": validation,
        "explanation": explanation,
    }


def gate_section(gate: dict[str, Any] | None, version: str) -> dict[str, Any] | None:
    """The promotion gate's verdict for this bundle; None without one (or for another)."""
    if gate is None or gate.get("bundle_version") != version:
        return None
    keys = ("promoted", "reason", "model_name", "version", "champion_before", "run_id")
    return {k: gate.get(k) for k in keys}


def _selection(train: dict[str, Any], evaluate: dict[str, Any]) -> dict[str, Any]:
    """How the model was chosen; a train.json or evaluate.json from before the search and
    the ablation names the stage to rerun."""
    for name, stage, keys in (
        ("train", "train", ("selection", "search", "classifier", "ensemble", "calibration")),
        ("evaluate", "evaluate", ("ablation",)),
    ):
        source = train if name == "train" else evaluate
        missing = [k for k in keys if k not in source]
        if missing:
            raise ValueError(f"{name}.json lacks {', '.join(missing)}: run `dvc repro {stage}`")
    return selection_section(train, evaluate)


def _plot(id_: str, section: str, title: str, alt: str) -> dict[str, str]:
    return {"id": id_, "title": title, "alt": alt, "section": section}


def shap_section(shap: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Global TreeSHAP importance and the explain stage's plots."""
    top = [
        {"feature": g["feature"], "mean_abs_shap": g["mean_abs_shap"]}
        for g in shap["global"][:SHAP_TOP]
    ]
    lead = ", ".join(f"{t['feature']} ({t['mean_abs_shap']:.3f})" for t in top[:3])
    summary = (
        f"TreeSHAP on the LightGBM member over {shap['sample_rows']:,} test rows "
        f"({shap['sample_frauds']:,} frauds, oversampled): the largest mean |SHAP| in "
        f"log-odds are {lead}."
    )
    cases = {case["plot"]: case for case in shap["local"]}
    first = top[0]["feature"] if top else "none"
    ae = shap["autoencoder"][0] if shap["autoencoder"] else None
    plots = []
    for name in shap["plots"]:
        id_ = f"shap/{name}"
        if name == "bar.png":
            plot = _plot(
                id_,
                "shap",
                "Mean |SHAP| per feature",
                "Horizontal bar chart of the mean absolute SHAP value (log-odds) of the "
                f"LightGBM member's most important features on {shap['sample_rows']:,} test "
                f"rows, largest first with {first} at the top; the last bar sums the rest.",
            )
        elif name == "beeswarm.png":
            plot = _plot(
                id_,
                "shap",
                "SHAP beeswarm",
                "Beeswarm plot: one dot per explained test row and feature, placed by its SHAP "
                "value in log-odds and coloured from low (blue) to high (red) feature value, "
                f"features ordered by mean |SHAP| with {first} first.",
            )
        elif name == "autoencoder_errors.png" and ae is not None:
            plot = _plot(
                id_,
                "shap",
                "Autoencoder error by feature",
                "Horizontal bars on a log scale: the autoencoder's mean squared reconstruction "
                "error per feature on legitimate and on fraudulent test rows, features with the "
                f"highest fraud/legitimate ratio first ({ae['feature']}, {ae['ratio']:.1f}×).",
            )
        elif name.startswith("dependence_"):
            feature = name.removeprefix("dependence_").removesuffix(".png")
            plot = _plot(
                id_,
                "shap",
                f"Dependence: {feature}",
                f"Scatter plot of {feature}'s value against its SHAP value (log-odds) on the "
                "explained test rows, coloured by the feature it interacts with most.",
            )
        elif name in cases:
            case = cases[name]
            kind = case["case"].replace("_", " ")
            biggest = case["top"][0] if case["top"] else None
            largest = (
                f"; the largest contribution is {biggest['feature']} ({biggest['shap']:+.3f})"
                if biggest
                else ""
            )
            plot = _plot(
                id_,
                "shap",
                f"Explained decision: {kind}",
                f"Waterfall plot for transaction {case['transaction_id']} "
                f"({'fraud' if case['is_fraud'] else 'legitimate'}, amount "
                f"{case['amount']:.2f}, probability {case['probability']:.4f}, "
                f"{case['risk_level']} / {case['decision']}): how each feature's SHAP value "
                f"moves the classifier's log-odds from the base value{largest}.",
            )
        else:
            stem = name.removesuffix(".png").replace("_", " ")
            plot = _plot(id_, "shap", f"SHAP: {stem}", f"SHAP plot {stem}.")
        plots.append(plot)
    section = {
        "summary": summary,
        "top_features": top,
        "sample_rows": shap["sample_rows"],
        "sample_frauds": shap["sample_frauds"],
        "reason_method": shap["reason_method"],
        "plots": [p["id"] for p in plots],
    }
    return section, plots


def fairness_section(fairness: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The fairness gate per attribute at the deployed alert threshold."""
    limits = fairness["limits"]
    dpd_max = limits["max_demographic_parity_difference"]
    eod_max = limits["max_equalized_odds_difference"]
    attributes, plots = [], []
    for name, result in fairness["attributes"].items():
        attributes.append(
            {
                "name": name,
                "passed": result["passed"],
                "judged": result["judged"],
                "dpd": result["dpd"],
                "eod": result["eod"],
                "dpd_all_groups": result["dpd_all_groups"],
                "eod_all_groups": result["eod_all_groups"],
                "violations": list(result["violations"]),
            }
        )
        groups = ", ".join(g["group"] for g in result["groups"])
        plots.append(
            _plot(
                f"fairness/{result['plot']}",
                "fairness",
                f"Fairness by {name}",
                f"Three bar charts of the alert rate, false-positive rate and false-negative "
                f"rate of each {name} group ({groups}); hatched bars are groups too small to "
                f"gate. DPD {result['dpd']:.4f}, EOD {result['eod']:.4f}.",
            )
        )
    names = ", ".join(a["name"] for a in attributes)
    if fairness["passed"]:
        summary = (
            f"The fairness gate passes at the deployed alert threshold (probability ≥ "
            f"{fairness['alert_threshold']}): DPD ≤ {dpd_max} and EOD ≤ {eod_max} for {names}."
        )
    else:
        summary = f"The fairness gate FAILS: {'; '.join(fairness['violations'])}."
    unjudged = [a["name"] for a in attributes if not a["judged"]]
    if unjudged:
        summary = summary[:-1] + f" (not judged, too few large groups: {', '.join(unjudged)})."
    section = {
        "passed": fairness["passed"],
        "summary": summary,
        "alert_threshold": fairness["alert_threshold"],
        "limits": limits,
        "attributes": attributes,
        "plots": [p["id"] for p in plots],
    }
    return section, plots


def drift_section(drift: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Feature and prediction drift from v0's training rows to the v1 stream."""
    features = drift["features"]
    n_drifted, n_features = len(features["drifted"]), len(features["features"])
    rate = drift["alert_rate"]
    summary = (
        f"{n_drifted} of {n_features} features drift from v0 training to v1 "
        f"({pct(features['drift_share'], 0)}; alert above {pct(features['max_drift_share'], 0)})"
        f": {'ALERT' if features['alert'] else 'no alert'}, informational, not a gate; the "
        f"alert rate moves from {pct(rate['reference'], 2)} to {pct(rate['current'], 2)}."
    )
    probability = next((p for p in drift["predictions"] if p["feature"] == "probability"), None)
    plots = []
    for name in drift["plots"]:
        id_ = f"drift/{name}"
        if name == "psi.png":
            plot = _plot(
                id_,
                "drift",
                "Feature drift (PSI)",
                f"Horizontal bar chart of the population stability index of each of the "
                f"{n_features} features, v0 training rows against v1; the {n_drifted} drifting "
                "features (KS test) in red, reference lines at 0.1 and 0.25.",
            )
        elif name == "scores.png":
            ks = f" (probability: KS {probability['ks_statistic']:.3f})" if probability else ""
            plot = _plot(
                id_,
                "drift",
                "Prediction drift",
                "Two cumulative distribution plots on a log scale, the calibrated probability "
                "and the classifier score, on the v0 test set and on v1; the KS statistic is "
                f"the largest vertical gap between the two curves{ks}.",
            )
        else:
            stem = name.removesuffix(".png").replace("_", " ")
            plot = _plot(id_, "drift", f"Drift: {stem}", f"Drift plot {stem}.")
        plots.append(plot)
    section = {
        "alert": features["alert"],
        "summary": summary,
        "drift_share": features["drift_share"],
        "max_drift_share": features["max_drift_share"],
        "features": n_features,
        "drifted": list(features["drifted"]),
        "alert_rate": {"reference": rate["reference"], "current": rate["current"]},
        "plots": [p["id"] for p in plots],
    }
    return section, plots


def poisoning_section(
    poisoning: dict[str, Any], k: int
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The label-flip study: each variant with the defense off and on."""
    ordered = sorted(
        poisoning.values(), key=lambda r: (r["flip_model"] or "", r["rate"], r["defense"])
    )
    rows = [{key: r[key] for key in POISONING_KEYS if key in r} for r in ordered]
    clean = poisoning["clean/defense_off"]["auprc"]
    worst = min((r for r in ordered if not r["defense"]), key=lambda r: r["auprc"])
    summary = (
        f"Worst AUPRC change without the defense: {worst['auprc'] - clean:+.4f} "
        f"({worst['labels']}, {pct(worst['rate'], 0)} of training labels flipped), against "
        f"{clean:.4f} on clean labels; every variant is evaluated on the clean time-later test "
        "set."
    )
    plot = _plot(
        "poisoning.png",
        "poisoning",
        "Label poisoning",
        "Two line charts against the share of flipped training labels (%): AUPRC and recall "
        f"at {k} alerts per day on the clean time-later test set, one line per flip model "
        "(uniform, hidden_fraud) with the defense off (solid) and on (dashed).",
    )
    section = {
        "summary": summary,
        "k": k,
        "worst_auprc_change": round(worst["auprc"] - clean, 6),
        "rows": rows,
        "plots": [plot["id"]],
    }
    return section, [plot]


def build_card(inputs: CardInputs, generated_at: datetime) -> dict[str, Any]:
    """The card (``card.json``) of ``inputs``' bundle; numbers are copied, not recomputed.

    Raises ``ValueError`` when a metrics file describes another bundle.
    """
    _check_versions(inputs)
    m = inputs.metrics
    shap, shap_plots = shap_section(m["shap"])
    fairness, fairness_plots = fairness_section(m["fairness"])
    drift, drift_plots = drift_section(m["drift"])
    poisoning, poisoning_plots = poisoning_section(m["poisoning"], m["evaluate"]["test"]["k"])
    return {
        "format_version": FORMAT_VERSION,
        "generated_at": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "bundle_version": inputs.bundle_version,
        "training": training_section(inputs.bundle),
        "evaluation": evaluation_section(m["evaluate"]),
        "thresholds": dict(inputs.bundle["tiers"]),
        "cost_basis": cost_basis(inputs.bundle, m["train"]),
        "selection": _selection(m["train"], m["evaluate"]),
        "gate": gate_section(inputs.gate, inputs.bundle_version),
        "audit": {"shap": shap, "fairness": fairness, "drift": drift, "poisoning": poisoning},
        "plots": shap_plots + fairness_plots + drift_plots + poisoning_plots,
        "report": REPORT_FILE,
    }


def plot_source(reports_dir: Path, plot: dict[str, str]) -> Path:
    """The PNG under ``reports_dir`` that a plot id names; refuses unsafe ids and non-PNGs."""
    id_ = PurePosixPath(plot["id"])
    if id_.is_absolute() or ".." in id_.parts or id_.suffix != ".png":
        raise ValueError(f"unsafe or non-PNG plot id {plot['id']!r}")
    path = _require(reports_dir.joinpath(*id_.parts), PLOT_STAGES[plot["section"]])
    with path.open("rb") as handle:
        if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            raise ValueError(f"{path} is not a PNG file")
    return path


def write_card(card: dict[str, Any], reports_dir: Path, out_dir: Path) -> None:
    """Write ``card.json``, the plots and ``report.html`` to ``out_dir``, replacing it whole."""
    report = _require(reports_dir / REPORT_FILE, "audit")
    sources = {plot["id"]: plot_source(reports_dir, plot) for plot in card["plots"]}
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / CARD_FILE).is_file():
        raise FileExistsError(f"{out_dir} exists and is not a model card: not replacing it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".card-", dir=out_dir.parent))
    try:
        for id_, source in sources.items():
            target = staging / PLOTS_DIR / id_
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        shutil.copyfile(report, staging / REPORT_FILE)
        text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
        (staging / CARD_FILE).write_text(text, encoding="utf-8")
        staging.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--out", type=Path, default=Path("models/card"))
    args = parser.parse_args(argv)
    inputs = read_inputs(args.metrics_dir, args.bundle)
    card = build_card(inputs, datetime.now(UTC))
    write_card(card, args.reports_dir, args.out)
    if inputs.gate is not None and card["gate"] is None:
        print(
            f"model_card: {args.metrics_dir / 'gate.json'} is for bundle "
            f"{inputs.gate.get('bundle_version')}, not {card['bundle_version']}: gate left null"
        )
    print(
        f"model_card: bundle {card['bundle_version']}, {len(card['plots'])} plots -> "
        f"{args.out / CARD_FILE}"
    )


if __name__ == "__main__":
    main()
