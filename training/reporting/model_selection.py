"""The model card's "How the model was chosen" section: the time folds, the search, and each
choice (imbalance strategy, monotone constraints, fusion, calibration) with the fold numbers
that decided it and one sentence of why, plus the autoencoder's ablation on the folds and
on the test set. Numbers are copied from ``metrics/train.json`` and ``metrics/evaluate.json``
(``training.modelling.fit.train_ensemble``'s report and ``evaluate``'s ablation)."""

from __future__ import annotations

from typing import Any

FOLD_KEYS = (
    "fold",
    "train_rows",
    "train_fraud",
    "train_end",
    "window_start",
    "window_end",
    "window_rows",
    "window_fraud",
)
SEARCH_KEYS = ("trials", "complete", "pruned", "budget", "best_trial", "best_value", "seconds")


def _best(scores: dict[str, float]) -> tuple[str, float, str, float] | None:
    """The best and the runner-up of a comparison (higher is better), or None for one."""
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    if len(ranked) < 2:
        return None
    return ranked[0][0], ranked[0][1], ranked[1][0], ranked[1][1]


def _imbalance(clf: dict[str, Any]) -> dict[str, Any]:
    scores = clf["imbalance_comparison"]
    kept = clf["selected"]
    found = _best(scores)
    why = f"{kept} was the only strategy compared."
    if found is not None:
        _, best, runner, second = found
        why = (
            f"{kept} had the best mean fold AUPRC of any strategy's best trial ({best:.4f}; "
            f"next {runner} {second:.4f})."
        )
    return {"kept": kept, "mean_fold_auprc": scores, "why": why}


def _monotone(clf: dict[str, Any]) -> dict[str, Any]:
    scores = clf["monotone_comparison"]
    kept = "on" if clf["monotone"] else "off"
    on, off = scores.get("True"), scores.get("False")
    mode = clf.get("monotone_mode", "search")
    if mode != "search":
        why = f"Constraints {kept}: set in params.yaml (train.classifier.monotone: {mode})."
    elif on is None or off is None:
        why = f"Constraints {kept}: only that setting was tried (no constrained feature or trial)."
    else:
        why = (
            f"Constraints {kept}: the best trial with them scored {on:.4f} mean fold AUPRC, "
            f"without them {off:.4f}."
        )
    return {"kept": kept, "mean_fold_auprc": scores, "why": why}


def _fusion(ensemble: dict[str, Any]) -> dict[str, Any]:
    candidates = {
        name: {k: c[k] for k in ("folds", "mean", "std")}
        for name, c in ensemble["candidates"].items()
    }
    kept = ensemble["chosen"]
    others = ", ".join(f"{n} {c['mean']:.4f}" for n, c in sorted(candidates.items()) if n != kept)
    why = (
        f"{kept} had the best mean window AUPRC over the folds "
        f"({candidates[kept]['mean']:.4f} ± {candidates[kept]['std']:.4f}; {others}), and "
        "classifier-only and autoencoder-only were candidates, so the kept model cannot be "
        "worse on the folds than either member alone."
    )
    return {"kept": kept, "candidates": candidates, "why": why}


def _calibration(calibration: dict[str, Any]) -> dict[str, Any]:
    brier = calibration.get("brier", {})
    kept = calibration["chosen"]
    if kept in brier and len(brier) > 1:
        others = ", ".join(f"{n} {b['mean']:.5f}" for n, b in sorted(brier.items()) if n != kept)
        why = (
            f"{kept} had the lowest leave-one-fold-out Brier score "
            f"({brier[kept]['mean']:.5f}; {others})."
        )
    else:
        why = f"{kept} was set in params.yaml (train.calibration), not compared."
    return {"kept": kept, "brier": brier, "why": why}


def _ablation(ensemble: dict[str, Any], evaluate: dict[str, Any]) -> dict[str, Any]:
    folds = dict(ensemble["ablation"])
    gain = folds["autoencoder_gain"]
    test = evaluate.get("ablation", {}).get("test")
    why = f"On the folds the autoencoder adds {gain:+.4f} AUPRC to the classifier alone" + (
        " (it is not used: classifier only was kept)." if gain == 0 else "."
    )
    if test is not None:
        why += (
            f" On the test set the kept model scores {test['kept']['auprc']:.4f} AUPRC against "
            f"{test['classifier_only']['auprc']:.4f} for the classifier alone "
            f"({test['gain_over_classifier']['auprc']:+.4f})."
        )
    return {"folds": folds, "test": test, "why": why}


def selection_section(train: dict[str, Any], evaluate: dict[str, Any]) -> dict[str, Any]:
    """How the model was chosen, from the train report and evaluate's ablation."""
    selection, search = train["selection"], train["search"]
    clf, ensemble = train["classifier"], train["ensemble"]
    return {
        "title": "How the model was chosen",
        "folds": {
            "window_days": selection["window_days"],
            "gap_days": selection["gap_days"],
            "refit": selection["refit"],
            "folds": [{k: f[k] for k in FOLD_KEYS} for f in selection["folds"]],
        },
        "search": {
            "seed": search["seed"],
            "pruning": search["pruning"],
            **{m: {k: search[m][k] for k in SEARCH_KEYS} for m in ("classifier", "autoencoder")},
        },
        "imbalance": _imbalance(clf),
        "monotone": _monotone(clf),
        "fusion": _fusion(ensemble),
        "calibration": _calibration(train["calibration"]),
        "rounds": clf["rounds"],
        "ablation": _ablation(ensemble, evaluate),
    }
