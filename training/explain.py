"""Stage ``explain``: a SHAP audit of the bundle on v0's time-later test part.

Global: TreeSHAP on the LightGBM member, in log-odds, on a seeded sample of ``sample_rows``
test rows. Fraud is oversampled so it is represented: every fraud up to half the sample,
the rest legitimate rows (mean |SHAP| is thus on a fraud-enriched mix, not the traffic
mix). Plots: beeswarm, mean-|SHAP| bar, dependence plots of the top features. SHAP runs on
the imputed inputs (``ScoreBatch.filled``), what LightGBM sees in the service.

Autoencoder: mean per-feature squared standardised reconstruction error on all test rows,
fraud vs legitimate; the plot shows the ``max_display`` features with the highest
fraud/legit ratio.

Local: three test decisions explained feature by feature, next to the service's reason
codes: ``caught_fraud`` (the median-probability fraud at MEDIUM or above), ``false_alarm``
(the highest-probability legitimate row at MEDIUM or above) and ``missed_fraud`` (the
largest-amount fraud left LOW). A case without candidates is listed in ``missing_cases``.

shap delegates LightGBM boosters to LightGBM's own ``pred_contrib``, which would make the
comparison a tautology; this stage runs shap's own TreeSHAP implementation instead and
checks it against ``pred_contrib`` and against additivity.

The service's reason codes come from path attribution by default (``reason_method`` path,
:mod:`fraud_model.forest`), not Shapley values. ``reason_agreement`` measures how
often they agree with TreeSHAP on the sample: the first reason is SHAP's largest positive
feature (``top1``), and the share of SHAP's top three positive features among the
service's three (``top3_overlap``), over all sampled rows and over the alerts.
Parameters: ``params.yaml`` ``explain``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from fraud_model.bundle import ModelBundle, load_bundle
from fraud_model.scorer import EnsembleScorer, ScoreBatch
from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.reporting.reports_io import pyplot, write_json

CASES = ("caught_fraud", "false_alarm", "missed_fraud")
DPI = 110


def stratified_sample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted row indices: every fraud up to ``n // 2``, then legitimate rows up to ``n``."""
    rng = np.random.default_rng(seed)
    fraud, legit = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    n_fraud = min(len(fraud), n // 2)
    n_legit = min(len(legit), n - n_fraud)
    chosen = [rng.choice(fraud, n_fraud, replace=False), rng.choice(legit, n_legit, replace=False)]
    return np.sort(np.concatenate(chosen))


def select_cases(
    y: np.ndarray,
    level: np.ndarray,
    probability: np.ndarray,
    fused: np.ndarray,
    amount: np.ndarray,
) -> dict[str, int]:
    """Row index of every local case that has a candidate (see the module docstring).
    Probability ties (isotonic calibration has plateaus) are broken by the fused score,
    then by row order."""
    caught = np.flatnonzero((y == 1) & (level >= 1))
    alarms = np.flatnonzero((y != 1) & (level >= 1))
    missed = np.flatnonzero((y == 1) & (level == 0))
    cases: dict[str, int] = {}
    if len(caught):
        ranked = caught[np.lexsort((fused[caught], probability[caught]))]
        cases["caught_fraud"] = int(ranked[(len(ranked) - 1) // 2])  # the lower median
    if len(alarms):
        ranked = alarms[np.lexsort((-fused[alarms], -probability[alarms]))]
        cases["false_alarm"] = int(ranked[0])
    if len(missed):
        cases["missed_fraud"] = int(missed[np.argmax(amount[missed])])
    return cases


def tree_shap(bundle: ModelBundle, filled: np.ndarray) -> Any:
    """A ``shap.Explanation`` (log-odds) from shap's own TreeSHAP, not LightGBM's."""
    import pandas as pd
    import shap

    explainer = shap.TreeExplainer(bundle.classifier)
    # shap parses the trees itself but hands LightGBM boosters back to pred_contrib;
    # "internal" runs its own C implementation on the parsed trees (same algorithm).
    explainer.model.model_type = "internal"
    return explainer(pd.DataFrame(filled, columns=list(bundle.features)))


def autoencoder_by_label(
    errors: np.ndarray, y: np.ndarray, features: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Mean reconstruction error per feature, fraud vs legitimate, by fraud/legit ratio."""

    def mean(mask: np.ndarray) -> np.ndarray:
        return errors[mask].mean(axis=0) if mask.any() else np.zeros(errors.shape[1])

    legit, fraud = mean(y != 1), mean(y == 1)
    rows = [
        {
            "feature": name,
            "legit_mean_error": float(legit[j]),
            "fraud_mean_error": float(fraud[j]),
            "ratio": float(fraud[j] / max(legit[j], 1e-12)),
        }
        for j, name in enumerate(features)
    ]
    return sorted(rows, key=lambda r: -r["ratio"])


def reasons_match(
    reasons: list[dict[str, Any]], names: list[str], shap_row: np.ndarray, top_k: int = 3
) -> bool:
    """The classifier reason codes are the ``top_k`` positive SHAP features, in order, with
    their values (the service rounds to 4 decimals)."""
    clf = [r for r in reasons if r["source"] == "classifier"]
    top = [j for j in np.argsort(-shap_row, kind="stable")[:top_k] if shap_row[j] > 0]
    return len(top) == len(clf) and all(
        r["code"] == names[j].upper() and abs(r["contribution"] - round(shap_row[j], 4)) <= 1e-6
        for r, j in zip(clf, top, strict=True)
    )


def _top_positive(values: np.ndarray, k: int) -> list[list[int]]:
    """Per row, the indices of the ``k`` largest positive values, largest first."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return [[j for j in row if values[i, j] > 0] for i, row in enumerate(order.tolist())]


def reason_agreement(
    service: np.ndarray, shap_values: np.ndarray, alerted: np.ndarray, k: int = 3
) -> dict[str, Any]:
    """How often the service's classifier reasons agree with TreeSHAP's (see the module)."""
    ours, theirs = _top_positive(service, k), _top_positive(shap_values, k)
    rows = [i for i, t in enumerate(theirs) if t]

    def summary(index: list[int]) -> dict[str, Any]:
        if not index:
            return {"rows": 0, "top1": None, "top3_overlap": None}
        top1 = np.mean([bool(ours[i]) and ours[i][0] == theirs[i][0] for i in index])
        overlap = np.mean([len(set(ours[i]) & set(theirs[i])) / len(theirs[i]) for i in index])
        return {"rows": len(index), "top1": float(top1), "top3_overlap": float(overlap)}

    return {
        "all": summary(rows),
        "alerts": summary([i for i in rows if alerted[i]]),
    }


def _save(fig: Any, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_global(expl: Any, out: Path, max_display: int, dependence: list[str]) -> None:
    import matplotlib.pyplot as plt
    import shap

    what = f"TreeSHAP, LightGBM member, {len(expl)} test rows (log-odds)"
    shap.plots.beeswarm(expl, max_display=max_display, show=False, plot_size=(9, 7))
    _save(plt.gcf(), out / "beeswarm.png", what)
    fig, ax = plt.subplots(figsize=(9, 7))
    shap.plots.bar(expl, max_display=max_display, ax=ax, show=False)
    _save(fig, out / "bar.png", f"mean |SHAP|: {what}")
    for name in dependence:
        fig, ax = plt.subplots(figsize=(7, 5))
        shap.plots.scatter(expl[:, name], color=expl, ax=ax, show=False)
        _save(fig, out / f"dependence_{name}.png", f"dependence of {name}: {what}")


def plot_autoencoder(rows: list[dict[str, Any]], path: Path, top: int, n: int) -> None:
    import matplotlib.pyplot as plt

    shown = rows[:top][::-1]
    ys = np.arange(len(shown))
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(shown) + 1.8))
    ax.barh(ys + 0.2, [r["legit_mean_error"] for r in shown], 0.4, label="legitimate")
    ax.barh(ys - 0.2, [r["fraud_mean_error"] for r in shown], 0.4, label="fraud")
    ax.set_yticks(ys, [f"{r['feature']} (x{r['ratio']:.1f})" for r in shown])
    ax.set_xscale("log")
    ax.set_xlabel("mean squared reconstruction error (standardised units, log scale)")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    title = f"Autoencoder error by feature, {n} test rows: top {len(shown)} by fraud/legit ratio"
    _save(fig, path, title)


def plot_local(expl: Any, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt
    import shap

    shap.plots.waterfall(expl, max_display=10, show=False)
    _save(plt.gcf(), path, title)


def explain_case(
    scorer: EnsembleScorer, test: Frame, batch: ScoreBatch, i: int, case: str, out: Path
) -> dict[str, Any]:
    """One decision feature by feature (waterfall plot), next to the service's reasons."""
    names = list(scorer.features)
    row = tree_shap(scorer.bundle, batch.filled[i : i + 1])[0]
    reasons = [
        {"code": r.code, "source": r.source, "contribution": r.contribution}
        for r in scorer.reasons(scorer.score(test.x[i : i + 1]))[0]
    ]
    level, tx = batch.risk_levels[i], str(test.meta["transaction_id"].iloc[i])
    title = f"{case}: {tx}, p={batch.probability[i]:.3f} ({level}); log-odds"
    plot_local(row, out / f"local_{case}.png", title)
    top = np.argsort(-np.abs(row.values), kind="stable")[:6]
    return {
        "case": case,
        "transaction_id": tx,
        "is_fraud": bool(test.y[i] == 1),
        "amount": float(test.meta["amount"].iloc[i]),
        "probability": float(batch.probability[i]),
        "risk_level": level,
        "decision": batch.decisions[i],
        "classifier_margin": float(batch.clf_margin[i]),
        "top": [
            {"feature": names[j], "value": float(row.data[j]), "shap": float(row.values[j])}
            for j in top
        ],
        "reason_codes": reasons,
        "reason_codes_match_shap": reasons_match(reasons, names, row.values),
        "reason_codes_in_shap_top3": _in_shap_top(reasons, names, row.values),
        "plot": f"local_{case}.png",
    }


def _in_shap_top(reasons: list[dict[str, Any]], names: list[str], shap_row: np.ndarray) -> int:
    """How many of the classifier reason codes are among SHAP's top three positive features."""
    top = {names[j].upper() for j in np.argsort(-shap_row, kind="stable")[:3] if shap_row[j] > 0}
    return sum(r["code"] in top for r in reasons if r["source"] == "classifier")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--bundle", type=Path, default=Path("models/bundle"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/shap"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/shap.json"))
    args = parser.parse_args(argv)
    section = load_params(args.params)["explain"]
    started = time.perf_counter()
    pyplot()  # headless backend before shap's plots import pyplot
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("*.png"):
        stale.unlink()

    bundle = load_bundle(args.bundle)
    scorer = EnsembleScorer(bundle, available_cores())
    _, parts = load_parts(args.training_set, "v0", ("test",))
    test = parts["test"]
    batch = scorer.score(test.x)
    names = list(bundle.features)

    sample = stratified_sample(test.y, section["sample_rows"], section["seed"])
    expl = tree_shap(bundle, batch.filled[sample])
    contrib = np.asarray(bundle.classifier.predict(batch.filled[sample], pred_contrib=True))
    additivity = expl.base_values + expl.values.sum(axis=1) - batch.clf_margin[sample]
    importance = np.abs(expl.values).mean(axis=0)
    order = np.argsort(-importance, kind="stable")
    dependence = [names[j] for j in order[: section["dependence_plots"]]]
    plot_global(expl, args.out, section["max_display"], dependence)

    autoencoder = autoencoder_by_label(batch.feature_errors, test.y, bundle.features)
    plot_autoencoder(
        autoencoder, args.out / "autoencoder_errors.png", section["max_display"], len(test)
    )

    amount = test.meta["amount"].to_numpy(dtype=np.float64)
    cases = select_cases(test.y, batch.level_index, batch.probability, batch.fused, amount)
    local = [explain_case(scorer, test, batch, i, case, args.out) for case, i in cases.items()]

    results: dict[str, Any] = {
        "bundle_version": bundle.version,
        "sample_rows": len(sample),
        "sample_frauds": int(test.y[sample].sum()),
        "test_rows": len(test),
        "base_value": float(expl.base_values[0]),
        "treeshap_max_abs_diff_vs_lightgbm": float(np.abs(expl.values - contrib[:, :-1]).max()),
        "reason_method": scorer.reason_method,
        "reason_agreement": reason_agreement(
            scorer.contributions(scorer.score(test.x[sample])),
            expl.values,
            batch.level_index[sample] > 0,
        ),
        "additivity_max_abs_error": float(np.abs(additivity).max()),
        "global": [{"feature": names[j], "mean_abs_shap": float(importance[j])} for j in order],
        "dependence": dependence,
        "autoencoder": autoencoder,
        "local": local,
        "missing_cases": [c for c in CASES if c not in cases],
        "plots": sorted(p.name for p in args.out.glob("*.png")),
    }
    write_json(args.metrics, results)
    agreement = results["reason_agreement"]["alerts"]
    print(
        f"explain: {len(sample)} rows ({results['sample_frauds']} fraud), top feature "
        f"{names[order[0]]}, TreeSHAP vs LightGBM "
        f"{results['treeshap_max_abs_diff_vs_lightgbm']:.1e}, additivity "
        f"{results['additivity_max_abs_error']:.1e}, {scorer.reason_method} reason codes vs "
        f"SHAP on alerts: first reason {agreement['top1']}, top-3 overlap "
        f"{agreement['top3_overlap']}, {len(results['plots'])} plots in {args.out}",
        flush=True,
    )
    print(f"explain: {time.perf_counter() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
