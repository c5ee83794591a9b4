"""The sections of the audit report (the ``audit`` stage, ``training.audit``), each rendered
from its stage's metrics file. Plots are linked relative to ``reports/``; each section opens
with what a reviewer should look at. Stages import this module; it imports no stage."""

from __future__ import annotations

from typing import Any

from training.reporting.markdown import markdown_table
from training.reporting.poisoning_table import poisoning_table

PASS, FAIL, WARN = "✅ pass", "❌ FAIL", "⚠️ ALERT"


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def look_at(sentence: str) -> str:
    return f"> **Look at:** {sentence}"


def agreement_sentence(shap: dict[str, Any]) -> str:
    """How the service's reason codes compare with TreeSHAP on the sample."""
    method, agreement = shap["reason_method"], shap["reason_agreement"]
    if method == "treeshap":
        return "The service's reason codes are these TreeSHAP values (`REASON_METHOD=treeshap`)."
    parts = []
    for name, label in (("all", "all sampled rows"), ("alerts", "the alerts")):
        a = agreement[name]
        if a["rows"]:
            parts.append(
                f"on {label} ({a['rows']:,}) the first reason is SHAP's largest positive "
                f"feature {a['top1']:.0%} of the time and {a['top3_overlap']:.0%} of SHAP's "
                "top three are among the service's three"
            )
    return (
        "The service's classifier reason codes come from path attribution (microseconds per "
        "transaction; exact TreeSHAP costs about a millisecond): " + "; ".join(parts) + "."
    )


def image(path: str, alt: str) -> str:
    return f"![{alt}]({path})"


def _worst_poisoning(poisoning: dict[str, Any]) -> tuple[str, float]:
    clean = poisoning["clean/defense_off"]["auprc"]
    worst = min((r for r in poisoning.values() if not r["defense"]), key=lambda r: r["auprc"])
    return worst["labels"], worst["auprc"] - clean


def summary_section(inputs: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    """Title, provenance and the verdicts at a glance."""
    fairness, drift = inputs["fairness"], inputs["drift"]
    test = inputs["evaluate"]["test"]
    limits = fairness["limits"]
    features = drift["features"]
    variant, drop = _worst_poisoning(inputs["poisoning"])
    fairness_verdict = (
        PASS if fairness["passed"] else f"{FAIL}: " + "; ".join(fairness["violations"])
    )
    unjudged = [n for n, a in fairness["attributes"].items() if not a["judged"]]
    if unjudged:
        fairness_verdict += f" (not judged, too few large groups: {', '.join(unjudged)})"
    rows = [
        (
            "Test AUPRC (v0, time-later)",
            f"{test['auprc']:.4f} (ROC-AUC {test['roc_auc']:.4f}, cost saving "
            f"{pct(test['cost_saving'])})",
        ),
        (
            f"Fairness gate (DPD ≤ {limits['max_demographic_parity_difference']}, "
            f"EOD ≤ {limits['max_equalized_odds_difference']})",
            fairness_verdict,
        ),
        (
            f"Feature drift v0 → v1 (alert above {pct(features['max_drift_share'], 0)})",
            f"{WARN if features['alert'] else PASS}: {len(features['drifted'])} of "
            f"{len(features['features'])} features ({pct(features['drift_share'], 0)}); "
            f"informational, not a gate",
        ),
        (
            "Poisoning: worst AUPRC change without the defense",
            f"{drop:+.4f} ({variant})",
        ),
    ]
    return "\n\n".join(
        [
            f"# Model audit: bundle `{inputs['evaluate']['bundle_version']}`",
            f"Data `{meta.get('data_version', 'unknown')}`, feature service "
            f"`{meta.get('feature_service', 'unknown')}`, labels `{meta.get('labels', 'clean')}`. "
            "Every figure is measured on the time-later test part of v0 unless it says v1.",
            markdown_table(("Check", "Result"), rows),
        ]
    )


def metrics_section(evaluate: dict[str, Any], metrics_diff: str | None) -> str:
    """Held-out quality on v0's test period and on v1, and the diff to the base branch."""
    test, later = evaluate["test"], evaluate["drifted_v1"]
    keys = (
        ("rows", "rows", lambda v: f"{v:,}"),
        ("fraud", "frauds", lambda v: f"{v:,}"),
        ("auprc", "AUPRC", num),
        ("roc_auc", "ROC-AUC", num),
        ("precision", "precision at the alert tier", num),
        ("recall", "recall at the alert tier", num),
        ("alerts_per_day", "alerts per day", lambda v: f"{v:.1f}"),
        ("precision_at_k", f"precision@{test['k']} per day", num),
        ("card_precision_at_k", f"card precision@{test['k']} per day", num),
        ("cost_saving", "cost saving vs approve-all", pct),
        ("ece", "expected calibration error", num),
    )
    rows = [(label, fmt(test[k]), fmt(later[k])) for k, label, fmt in keys]
    members = [
        (
            "autoencoder alone, AUPRC",
            num(test["members"]["ae_auprc"]),
            num(later["members"]["ae_auprc"]),
        ),
        (
            "LightGBM alone, AUPRC",
            num(test["members"]["classifier_auprc"]),
            num(later["members"]["classifier_auprc"]),
        ),
    ]
    diff = (
        metrics_diff.strip()
        if metrics_diff and metrics_diff.strip()
        else "_No base-branch diff here: the audit workflow adds `dvc metrics diff` against "
        "the pull request's base; locally run `dvc metrics diff main`._"
    )
    return "\n\n".join(
        [
            "## Metrics",
            look_at(
                "test AUPRC and cost saving against the base branch; the promotion gate "
                "refuses a challenger whose AUPRC is lower by more than its tolerance."
            ),
            markdown_table(
                ("Metric", "v0 test (time-later)", "v1 (drifted period)"), rows + members
            ),
            "### Committed metrics against the base branch",
            diff,
        ]
    )


def shap_section(shap: dict[str, Any]) -> str:
    """Global TreeSHAP, the autoencoder's errors, and three decisions explained."""
    top = shap["global"][:10]
    ae = shap["autoencoder"][:8]
    parts = [
        "## SHAP",
        look_at(
            "whether the features driving the model are plausible fraud signals (not "
            "proxies of who the customer is), and whether the local explanations match the "
            "reason codes the service returns."
        ),
        f"TreeSHAP on the LightGBM member, in log-odds, on {shap['sample_rows']:,} test rows "
        f"({shap['sample_frauds']:,} frauds, oversampled). Base value "
        f"{shap['base_value']:.3f}. shap's own TreeSHAP agrees with LightGBM's "
        f"`pred_contrib` to {shap['treeshap_max_abs_diff_vs_lightgbm']:.1e}; additivity error "
        f"{shap['additivity_max_abs_error']:.1e}.",
        agreement_sentence(shap),
        image("shap/bar.png", "mean |SHAP| per feature"),
        image("shap/beeswarm.png", "SHAP beeswarm"),
        markdown_table(
            ("Feature", "mean \\|SHAP\\| (log-odds)"),
            ((f"`{g['feature']}`", num(g["mean_abs_shap"], 3)) for g in top),
        ),
        "### Dependence of the top features",
        " ".join(image(f"shap/dependence_{f}.png", f"dependence: {f}") for f in shap["dependence"]),
        "### Autoencoder: reconstruction error by feature, fraud vs legitimate",
        image("shap/autoencoder_errors.png", "autoencoder per-feature errors"),
        markdown_table(
            ("Feature", "legitimate", "fraud", "ratio"),
            (
                (
                    f"`{a['feature']}`",
                    num(a["legit_mean_error"], 3),
                    num(a["fraud_mean_error"], 3),
                    f"{a['ratio']:.1f}×",
                )
                for a in ae
            ),
        ),
        "### Three decisions explained",
    ]
    for case in shap["local"]:
        codes = (
            ", ".join(
                f"`{r['code']}` ({r['source']}, {r['contribution']:+.3f})"
                for r in case["reason_codes"]
            )
            or "none"
        )
        top_features = ", ".join(
            f"`{t['feature']}` = {t['value']:.4g} ({t['shap']:+.3f})" for t in case["top"][:4]
        )
        match = (
            "match the SHAP ranking"
            if case["reason_codes_match_shap"]
            else f"have {case['reason_codes_in_shap_top3']} of their features among SHAP's "
            "top three positive ones"
        )
        parts += [
            f"**{case['case'].replace('_', ' ')}**: `{case['transaction_id']}`, amount "
            f"{case['amount']:.2f}, fraud {'yes' if case['is_fraud'] else 'no'}, probability "
            f"{case['probability']:.4f} → {case['risk_level']} / {case['decision']}. "
            f"Largest SHAP values: {top_features}. Service reason codes: {codes}; they "
            f"{match}.",
            image(f"shap/{case['plot']}", f"waterfall: {case['case']}"),
        ]
    if shap["missing_cases"]:
        parts.append(f"No candidate on this data for: {', '.join(shap['missing_cases'])}.")
    return "\n\n".join(parts)


def fairness_section(fairness: dict[str, Any]) -> str:
    """Group metrics, the gate, and the mitigation trade-off."""
    limits = fairness["limits"]
    parts = [
        "## Fairness",
        look_at(
            "the DPD and EOD columns against their limits, and the groups marked not gated "
            "(too small to judge); then whether any mitigation is worth its cost."
        ),
        f"Fairlearn `MetricFrame` at the deployed thresholds (alert = not approved, "
        f"probability ≥ {fairness['alert_threshold']}) on {fairness['test_rows']:,} test rows "
        f"with {fairness['test_frauds']:,} frauds. The attributes are synthetic "
        "(docs/data.md) and never model features. The gate uses groups with at least "
        f"{limits['min_group_frauds']} frauds and {limits['min_group_rows']} rows; DPD ≤ "
        f"{limits['max_demographic_parity_difference']}, EOD ≤ "
        f"{limits['max_equalized_odds_difference']}.",
    ]
    for name, result in fairness["attributes"].items():
        verdict = PASS if result["passed"] else f"{FAIL}: " + "; ".join(result["violations"])
        if not result["judged"]:
            verdict = "not judged: fewer than two groups large enough"
        parts += [
            f"### {name}: DPD {num(result['dpd'])}, EOD {num(result['eod'])} ({verdict})",
            f"Over all groups, small ones included: DPD {num(result['dpd_all_groups'])}, "
            f"EOD {num(result['eod_all_groups'])}.",
            markdown_table(
                ("Group", "rows", "frauds", "alert rate", "FPR", "FNR", "precision", "gated"),
                (
                    (
                        g["group"],
                        f"{g['rows']:,}",
                        f"{g['frauds']:,}",
                        pct(g["alert_rate"], 2),
                        pct(g["fpr"], 2),
                        pct(g["fnr"], 1),
                        num(g["precision"], 3),
                        "yes" if g["gated"] else "no (too small)",
                    )
                    for g in result["groups"]
                ),
            ),
            image(f"fairness/{result['plot']}", f"group rates: {name}"),
        ]
    parts += [
        "### Mitigation: ThresholdOptimizer (equalized odds), fitted on validation",
        "Group-specific thresholds replace the alert threshold; a mitigated alert keeps the "
        "deployed tier (or becomes a review). Cost is in the currency of the amounts, with the "
        "bundle's cost model. The optimizer equalises odds over every group, the small ones "
        "included, so a small group's noisy validation rates constrain all the others; its "
        "thresholds are fitted on validation, so the test disparities show whether the "
        "correction carries over to later data.",
        markdown_table(
            (
                "Attribute",
                "Policy",
                "alerts/day",
                "precision",
                "recall",
                "cost saving",
                "DPD",
                "EOD",
            ),
            (_mitigation_row(r) for r in fairness["mitigation"]),
        ),
    ]
    return "\n\n".join(parts)


def _mitigation_row(r: dict[str, Any]) -> tuple[str, ...]:
    if "skipped" in r:
        return (r["attribute"], r["policy"], f"skipped: {r['skipped']}", "", "", "", "", "")
    return (
        r["attribute"],
        r["policy"],
        f"{r['alerts_per_day']:.1f}",
        num(r["precision"], 3),
        num(r["recall"], 3),
        pct(r["cost_saving"]),
        num(r["dpd"]),
        num(r["eod"]),
    )


def drift_section(drift: dict[str, Any]) -> str:
    """Feature, prediction and performance drift from v0 to v1."""
    features = drift["features"]
    rows = drift["rows"]
    moved = sorted(features["features"], key=lambda f: -f["psi"])[:12]
    perf = drift["performance"]
    keys = {
        "auprc": "AUPRC",
        "roc_auc": "ROC-AUC",
        "precision": "precision at the alert tier",
        "recall": "recall at the alert tier",
        "f1": "F1 at the alert tier",
        "alerts_per_day": "alerts per day",
        "ece": "expected calibration error",
    }
    return "\n\n".join(
        [
            "## Drift",
            look_at(
                "the share of drifting features against the alert line and the same-period "
                "control, then how much the v0-trained model lost on v1: that is the case "
                "for retraining."
            ),
            f"Features: v0 training rows ({rows['reference']:,}, the model's reference) vs "
            f"v1 ({rows['current']:,}). A feature drifts when the two-sample KS test rejects "
            f"at α = {features['alpha']} and the KS statistic is at least "
            f"{features['min_ks_statistic']}. **{len(features['drifted'])} of "
            f"{len(features['features'])} features drift ({pct(features['drift_share'], 0)}; "
            f"alert above {pct(features['max_drift_share'], 0)}): "
            f"{WARN if features['alert'] else 'no alert'}.** Control, v0 train vs v0 test "
            f"(same period, {rows['control']:,} rows): {pct(drift['control']['drift_share'], 0)}"
            f" ({', '.join(f'`{f}`' for f in drift['control']['drifted']) or 'none'}).",
            markdown_table(
                ("Feature (top 12 by PSI)", "KS", "p-value", "PSI", "drifted"),
                (
                    (
                        f"`{f['feature']}`",
                        num(f["ks_statistic"], 3),
                        f"{f['ks_pvalue']:.1e}",
                        num(f["psi"], 3),
                        "yes" if f["drifted"] else "no",
                    )
                    for f in moved
                ),
            ),
            image("drift/psi.png", "PSI per feature"),
            "### Prediction drift: v0 test vs v1",
            f"Alert rate {pct(drift['alert_rate']['reference'], 2)} → "
            f"{pct(drift['alert_rate']['current'], 2)}.",
            markdown_table(
                ("Score", "KS", "PSI", "drifted"),
                (
                    (
                        f"`{p['feature']}`",
                        num(p["ks_statistic"], 3),
                        num(p["psi"], 3),
                        "yes" if p["drifted"] else "no",
                    )
                    for p in drift["predictions"]
                ),
            ),
            image("drift/scores.png", "score distributions"),
            "### Performance drift: the v0-trained model on v0 test and on v1",
            markdown_table(
                ("Metric", "v0 test", "v1", "change"),
                (
                    (
                        label,
                        num(perf["reference"][k]),
                        num(perf["current"][k]),
                        f"{perf['change'][k]:+.4f}",
                    )
                    for k, label in keys.items()
                ),
            ),
        ]
    )


def poisoning_section(poisoning: dict[str, Any], k: int) -> str:
    """The label-flip study: every variant with and without the defense."""
    rows = sorted(
        poisoning.values(), key=lambda r: (r["flip_model"] or "", r["rate"], r["defense"])
    )
    return "\n\n".join(
        [
            "## Poisoning",
            look_at(
                "how fast AUPRC and recall fall as flipped training labels grow, and "
                "whether the defense helps or hurts each flip model."
            ),
            "Each row is the whole ensemble trained on v0's training rows with the labels "
            "flipped as named (uniform: random flips both ways; hidden_fraud: frauds relabelled "
            "legitimate), with the confident-learning defense off or on, and always evaluated on "
            "the clean time-later test set.",
            poisoning_table(rows, k).strip(),
            image("poisoning.png", "AUPRC and recall vs flipped labels"),
        ]
    )
