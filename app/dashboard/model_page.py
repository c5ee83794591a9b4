"""The Model page: what is serving, and its model card (docs/model-card.md).

Rendered on the server from ``card.json``: it is static for a given card, so it needs no
script and reads the same with JavaScript off. Every value is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from app.dashboard.state import ModelCard
from fraud_model.decisions import DECISIONS

_METRICS = (
    ("auprc", "AUPRC", "f3"),
    ("roc_auc", "ROC AUC", "f3"),
    ("precision", "Precision at the alert tier", "pct"),
    ("recall", "Recall at the alert tier", "pct"),
    ("f1", "F1 at the alert tier", "f3"),
    ("alerts_per_day", "Alerts a day", "f1"),
    ("recall_at_k", "Recall within the alert budget", "pct"),
    ("cost_saving", "Cost saved against approving all", "pct"),
    ("ece", "Calibration error (ECE)", "f4"),
    ("brier", "Brier score", "f4"),
    ("rows", "Transactions", "int"),
    ("fraud", "Frauds", "int"),
    ("days", "Days", "int"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return escape(str(value))
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "int":
        return f"{value:,.0f}"
    if kind.startswith("f"):
        return f"{value:,.{int(kind[1:])}f}"
    return escape(str(value))


def _table(caption: str, head: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    """A table; cells are HTML already. Columns from ``numeric_from`` align right."""
    ths = "".join(
        f'<th scope="col"{" class=num" if i >= numeric_from else ""}>{escape(h)}</th>'
        for i, h in enumerate(head)
    )
    body = []
    for row in rows:
        cells = [f'<th scope="row">{row[0]}</th>']
        cells += [
            f"<td{' class=num' if i + 1 >= numeric_from else ''}>{c}</td>"
            for i, c in enumerate(row[1:])
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{escape(caption)}">'
        f"<table><caption>{escape(caption)}</caption>"
        f"<thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _facts(pairs: list[tuple[str, str]]) -> str:
    items = "".join(f"<div><dt>{escape(k)}</dt><dd>{v}</dd></div>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def _code(value: Any) -> str:
    return f"<code>{escape(str(value))}</code>" if value not in (None, "") else "–"


def _badge(ok: bool, good: str, bad: str) -> str:
    return f'<span class="badge {"ok" if ok else "bad"}">{escape(good if ok else bad)}</span>'


def served_section(served: dict[str, Any]) -> str:
    pairs = [
        ("Model version", _code(served["version"])),
        ("Decisions by", escape(served["decision_source"].replace("_", " "))),
        ("Registry alias", _code(served.get("alias"))),
        ("Registry version", _code(served.get("registry_version"))),
        ("Loaded from", _code(served["source"])),
        ("Feature service", _code(served["feature_service"])),
    ]
    problem = served.get("problem")
    warn = (
        f'<p class="alert error">Scoring with the rules fallback: {escape(problem)}</p>'
        if problem
        else ""
    )
    return (
        '<section class="panel" aria-labelledby="h-served"><h2 id="h-served">Serving now</h2>'
        f"{warn}{_facts(pairs)}</section>"
    )


def _training(card: dict[str, Any]) -> str:
    t = card.get("training", {})
    rows = t.get("rows", {})
    val = t.get("validation_auprc", {})
    pairs = [
        ("Training data version (DVC)", _code(t.get("data_version"))),
        ("Trained at", escape(str(t.get("trained_at", "–")))),
        ("Feature service", _code(t.get("feature_service"))),
        ("Labels", escape(str(t.get("labels", "–")))),
        ("Poisoning defence", _fmt(t.get("defense"), "")),
        ("Rows of training time", _fmt(rows.get("training_time"), "int")),
        ("Mean fold AUPRC (kept model)", _fmt(val.get("ensemble"), "f3")),
    ]
    return (
        '<section class="panel" aria-labelledby="h-training"><h2 id="h-training">Training</h2>'
        f"{_facts(pairs)}</section>"
    )


def _evaluation(card: dict[str, Any]) -> str:
    sets = card.get("evaluation", {})
    names = [n for n in ("test", "drifted") if n in sets]
    if not names:
        return ""
    head = ["Metric", *[sets[n].get("title", n) for n in names]]
    rows = [
        [escape(label), *[_fmt(sets[n].get(key), kind) for n in names]]
        for key, label, kind in _METRICS
    ]
    scenarios = sorted({s for n in names for s in sets[n].get("recall_by_scenario", {})})
    rows += [
        [f"Recall: {escape(s.replace('_', ' '))}"]
        + [_fmt(sets[n].get("recall_by_scenario", {}).get(s), "pct") for n in names]
        for s in scenarios
    ]
    note = (
        '<p class="panel-note">Measured on data later in time than any training row '
        "(never a random split). The alert tier is review or stricter.</p>"
    )
    return (
        '<section class="panel" aria-labelledby="h-eval"><h2 id="h-eval">Quality on '
        f"time-later data</h2>{note}{_table('Quality metrics', head, rows)}</section>"
    )


def _thresholds(card: dict[str, Any], served: dict[str, Any]) -> str:
    tiers = served.get("thresholds") or card.get("thresholds", {})
    order = [("medium", "MEDIUM"), ("high", "HIGH"), ("critical", "CRITICAL")]
    rows = [
        [
            escape(level),
            _fmt(tiers.get(key), "f3"),
            escape(DECISIONS[level].replace("_", " ")),  # type: ignore[index]
        ]
        for key, level in order
    ]
    rows.insert(0, ["LOW", f"below {_fmt(tiers.get('medium'), 'f3')}", "approve"])
    table = _table("Risk tiers", ["Tier", "From probability", "Decision"], rows, numeric_from=1)
    basis = card.get("cost_basis", {})
    costs = basis.get("cost_model", {})
    cost_rows = [[escape(k.replace("_", " ")), _fmt(v, "f2")] for k, v in sorted(costs.items())]
    cost_table = _table("Cost model", ["Cost", "Value"], cost_rows) if cost_rows else ""
    budget = basis.get("alert_budget_per_day")
    text = escape(basis.get("explanation", ""))
    budget_text = f" Alert budget: {_fmt(budget, 'int')} a day." if budget is not None else ""
    return (
        '<section class="panel" aria-labelledby="h-tiers"><h2 id="h-tiers">Thresholds and '
        f'their cost basis</h2><p class="panel-note">{text}{budget_text}</p>'
        f'<div class="grid-2 tight">{table}{cost_table}</div></section>'
    )


def _selection(card: dict[str, Any]) -> str:
    """Each choice the folds decided, with the model card's sentence of why."""
    selection = card.get("selection")
    if not selection:
        return ""
    folds = selection.get("folds", {})
    search = selection.get("search", {})
    trials = {m: search.get(m, {}) for m in ("classifier", "autoencoder")}
    intro = (
        f"<p>{len(folds.get('folds', []))} time folds of {_fmt(folds.get('window_days'), '')}"
        f" days after a {_fmt(folds.get('gap_days'), '')}-day gap; Optuna trials: classifier "
        f"{_fmt(trials['classifier'].get('trials'), 'int')} "
        f"({_fmt(trials['classifier'].get('pruned'), 'int')} pruned), autoencoder "
        f"{_fmt(trials['autoencoder'].get('trials'), 'int')}.</p>"
    )
    rows = [
        [escape(label), escape(str(selection.get(key, {}).get("kept", "–"))), escape(why)]
        for label, key in (
            ("Imbalance strategy", "imbalance"),
            ("Monotone constraints", "monotone"),
            ("Fusion", "fusion"),
            ("Calibration", "calibration"),
        )
        for why in [str(selection.get(key, {}).get("why", ""))]
    ]
    rows.append(["Autoencoder ablation", "", escape(selection.get("ablation", {}).get("why", ""))])
    table = _table("Choices made on the time folds", ["Choice", "Kept", "Why"], rows, 3)
    return (
        '<section class="panel" aria-labelledby="h-selection"><h2 id="h-selection">'
        f"How the model was chosen</h2>{intro}{table}</section>"
    )


def _gate(card: dict[str, Any]) -> str:
    gate = card.get("gate")
    if not gate:
        return ""
    ok = bool(gate.get("promoted"))
    return (
        '<section class="panel" aria-labelledby="h-gate"><h2 id="h-gate">Promotion gate</h2>'
        f"<p>{_badge(ok, 'Promoted', 'Not promoted')} {escape(str(gate.get('reason', '')))}"
        f" (registry {escape(str(gate.get('model_name', '')))} version "
        f"{escape(str(gate.get('version', '')))})</p></section>"
    )


def _figures(card: dict[str, Any], section: str) -> str:
    figures = []
    for plot in card.get("plots", []):
        if plot.get("section") != section:
            continue
        src = "/dashboard/card/plots/" + escape(plot["id"])
        figures.append(
            f'<figure><a href="{src}"><img src="{src}" alt="{escape(plot.get("alt", ""))}" '
            f'loading="lazy"></a><figcaption>{escape(plot.get("title", plot["id"]))}'
            "</figcaption></figure>"
        )
    return f'<div class="figures">{"".join(figures)}</div>' if figures else ""


def _audit(card: dict[str, Any]) -> str:
    audit = card.get("audit", {})
    parts = []
    shap = audit.get("shap")
    if shap:
        rows = [
            [_code(f["feature"]), _fmt(f.get("mean_abs_shap"), "f4")]
            for f in shap.get("top_features", [])
        ]
        parts.append(
            f"<h3>SHAP: what drives the classifier</h3><p>{escape(shap.get('summary', ''))}</p>"
            + _table("Top features by mean |SHAP|", ["Feature", "Mean |SHAP|"], rows)
            + _figures(card, "shap")
        )
    fair = audit.get("fairness")
    if fair:
        rows = [
            [
                escape(a["name"].replace("_", " ")),
                _badge(bool(a.get("passed")), "passes", "fails"),
                _fmt(a.get("dpd"), "f4"),
                _fmt(a.get("eod"), "f4"),
                escape("; ".join(str(v) for v in a.get("violations", [])) or "none"),
            ]
            for a in fair.get("attributes", [])
        ]
        head = ["Attribute", "Gate", "Demographic parity diff.", "Equalised odds diff.", "Issues"]
        parts.append(
            "<h3>Fairness</h3><p>"
            + _badge(bool(fair.get("passed")), "Fairness gate passed", "Fairness gate failed")
            + f" {escape(fair.get('summary', ''))}</p>"
            + _table("Fairness by attribute", head, rows, numeric_from=2)
            + _figures(card, "fairness")
        )
    drift = audit.get("drift")
    if drift:
        drifted = ", ".join(drift.get("drifted", [])) or "none"
        parts.append(
            "<h3>Drift</h3><p>"
            + _badge(not drift.get("alert"), "No drift alert", "Drift alert")
            + f" {escape(drift.get('summary', ''))}</p>"
            + f'<p class="panel-note">Drifted features: {escape(drifted)}</p>'
            + _figures(card, "drift")
        )
    poison = audit.get("poisoning")
    if poison:
        rows = [
            [
                escape(str(r.get("labels", ""))),
                _fmt(r.get("rate"), "pct"),
                _fmt(r.get("defense"), ""),
                _fmt(r.get("auprc"), "f3"),
                _fmt(r.get("recall_at_budget"), "pct"),
            ]
            for r in poison.get("rows", [])
        ]
        head = ["Training labels", "Poisoned", "Defence", "AUPRC", "Recall within budget"]
        parts.append(
            f"<h3>Label poisoning</h3><p>{escape(poison.get('summary', ''))}</p>"
            + _table("Poisoned training sets", head, rows, numeric_from=1)
            + _figures(card, "poisoning")
        )
    if not parts:
        return ""
    link = (
        '<p><a href="/dashboard/card/report">Open the full audit report</a></p>'
        if card.get("report")
        else ""
    )
    generated = escape(str(card.get("generated_at", "")))
    return (
        '<section class="panel audit" aria-labelledby="h-audit"><h2 id="h-audit">Latest audit'
        f'</h2><p class="panel-note">Card generated {generated}.</p>{link}'
        + "".join(parts)
        + "</section>"
    )


def render(served: dict[str, Any], card: ModelCard) -> str:
    """The Model page body."""
    head = (
        '<div class="page-head"><h1>Model</h1><p class="lede">The model card of the bundle '
        "this pod serves: its training data, quality on later data, thresholds and audit."
        "</p></div>"
    )
    out = [head, served_section(served)]
    if card.data is None:
        out.append(f'<p class="alert warn">{escape(card.problem or "no model card")}</p>')
        return "".join(out)
    data = card.data
    version = data.get("bundle_version")
    if version != served["version"]:
        out.append(
            f'<p class="alert warn">This card describes bundle <code>{escape(str(version))}'
            f"</code>, but <code>{escape(served['version'])}</code> is serving: its numbers "
            "are not this model's. Rebuild the image with the card of the served bundle.</p>"
        )
    out += [
        '<div class="grid-2">',
        _training(data),
        _gate(data) or "<div></div>",
        "</div>",
        _evaluation(data),
        _selection(data),
        _thresholds(data, served),
        _audit(data),
    ]
    return "".join(out)
