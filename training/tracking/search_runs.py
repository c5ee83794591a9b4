"""The hyperparameter search in MLflow: every Optuna trial a child run of the training run,
each study's best trial and parameter-importance plot among the parent run's artifacts,
and the training report's key choices as the parent's parameters and metrics.

``train`` and ``training.external`` call these inside their own ``mlflow.start_run``;
``evaluate`` later resumes that run, so one run holds the choices, the trials (children),
the test metrics and the registered model version.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from training.reporting.reports_io import pyplot
from training.tracking.registry import flat_metrics

if TYPE_CHECKING:
    from training.modelling.search import SearchResult

COMPLETE = optuna.trial.TrialState.COMPLETE


def fold_values(trial: optuna.trial.FrozenTrial) -> dict[int, float]:
    """Each fold's window AUPRC by fold number. The objective reports the running mean
    after each fold, so a fold's own value is recovered from consecutive means; a pruned
    trial has no ``fold_auprc`` attribute but has the folds it reached."""
    values: dict[int, float] = {}
    previous = 0.0
    for k, (step, mean) in enumerate(sorted(trial.intermediate_values.items()), start=1):
        values[step] = k * mean - (k - 1) * previous
        previous = mean
    return values


def log_trial(mlflow: Any, study: str, trial: optuna.trial.FrozenTrial) -> str:
    """One trial as a child run of the active run; returns its run id."""
    with mlflow.start_run(run_name=f"{study}-trial-{trial.number}", nested=True) as run:
        mlflow.set_tags(
            {"study": study, "trial_number": str(trial.number), "trial_state": trial.state.name}
        )
        if trial.params:
            mlflow.log_params(trial.params)
        if trial.state == COMPLETE and trial.value is not None:
            mlflow.log_metric("mean_fold_auprc", trial.value)
        for step, mean in sorted(trial.intermediate_values.items()):
            mlflow.log_metric("running_mean_auprc", mean, step=step)
        for step, value in fold_values(trial).items():
            mlflow.log_metric("fold_auprc", value, step=step)
        if trial.duration is not None:
            mlflow.log_metric("seconds", trial.duration.total_seconds())
        return str(run.info.run_id)


def best_trial(result: SearchResult) -> dict[str, Any]:
    """The study's best trial: number, parameters, mean and per-fold window AUPRC."""
    best = result.study.best_trial
    return {
        "number": best.number,
        "params": best.params,
        "value": best.value,
        "fold_auprc": best.user_attrs.get("fold_auprc", list(fold_values(best).values())),
        "trials": len(result.study.trials),
        "complete": sum(t.state == COMPLETE for t in result.study.trials),
    }


def param_importances(study: optuna.Study, seed: int = 0) -> tuple[dict[str, float], str | None]:
    """fANOVA importances over the completed trials' varying parameters, or why none."""
    complete = study.get_trials(deepcopy=False, states=(COMPLETE,))
    if len(complete) < 2:
        return {}, f"{len(complete)} completed trial(s): importances need at least 2"
    common = set.intersection(*(set(t.params) for t in complete))
    varying = sorted(p for p in common if len({repr(t.params[p]) for t in complete}) > 1)
    if not varying:
        return {}, "no parameter varies across the completed trials"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator, params=varying)
    return {k: float(v) for k, v in found.items()}, None


def importance_plot(importances: dict[str, float], title: str, path: Path) -> None:
    plt = pyplot()
    names = list(importances)[::-1]  # most important on top
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1.2))
    ax.barh(names, [importances[n] for n in names], color="#4c72b0")
    ax.set_xlabel("fANOVA importance (share of the mean fold AUPRC's variance)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def log_search(
    mlflow: Any, studies: Mapping[str, SearchResult], seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Every trial of every study as a child run of the active run, and per study
    ``search/<study>_best_trial.json`` and ``search/<study>_param_importances.png`` (or,
    when importances cannot be computed, a ``search.<study>.importance`` tag saying why)."""
    logged: dict[str, dict[str, Any]] = {}
    for name, result in studies.items():
        children = [log_trial(mlflow, name, t) for t in result.study.trials]
        importances, note = param_importances(result.study, seed)
        payload = {**best_trial(result), "importances": importances, "importance_note": note}
        mlflow.log_dict(payload, f"search/{name}_best_trial.json")
        if note is None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{name}_param_importances.png"
                importance_plot(importances, f"{name}: parameter importances", path)
                mlflow.log_artifact(str(path), artifact_path="search")
            mlflow.set_tag(f"search.{name}.importance", "plotted")
        else:
            mlflow.set_tag(f"search.{name}.importance", f"skipped: {note}")
        logged[name] = {"children": children, **payload}
    return logged


def train_choices(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """The training report's key choices as run parameters, and the fold numbers behind
    them as metrics (``train.`` prefixed so they never clash with ``evaluate``'s)."""
    clf, ensemble = report["classifier"], report["ensemble"]
    params = {
        "train.imbalance": clf["selected"],
        "train.monotone": clf["monotone"],
        "train.rounds": clf["rounds"],
        "train.fusion_candidate": ensemble["chosen"],
        "train.calibration": report["calibration"]["chosen"],
        "train.folds": len(report["selection"]["folds"]),
        "train.search_seed": report["search"]["seed"],
    }
    candidates = {
        name: {"mean": c["mean"], "std": c["std"]} for name, c in ensemble["candidates"].items()
    }
    metrics = {
        **flat_metrics(candidates, "train.fusion."),
        **flat_metrics(ensemble.get("ablation", {}), "train.ablation."),
        **flat_metrics(clf["imbalance_comparison"], "train.imbalance."),
        **flat_metrics(
            {k: c["mean"] for k, c in report["calibration"].get("brier", {}).items()},
            "train.brier.",
        ),
        "train.seconds": float(report["seconds"]),
    }
    return params, metrics


def track_training(
    experiment: str,
    run_name: str,
    report: dict[str, Any],
    studies: Mapping[str, SearchResult],
    tags: dict[str, str],
    metrics: dict[str, float] | None = None,
) -> str:
    """One MLflow run of a training: its choices, its search (trials as child runs) and
    any further ``metrics``; returns the run id."""
    from training.tracking import registry

    mlflow = registry.configure(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        params, choice_metrics = train_choices(report)
        mlflow.log_params(params)
        mlflow.log_metrics({**choice_metrics, **(metrics or {})})
        log_search(mlflow, studies, seed=report["search"]["seed"])
        return str(run.info.run_id)
