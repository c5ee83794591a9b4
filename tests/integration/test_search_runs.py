"""The search in MLflow on a temporary SQLite store: one child run per trial under the
training run, the best trial and importance plot as artifacts, and ``evaluate`` resuming
``train``'s run so one run holds the choices, the trials and the test metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from fraud_model.bundle import load_bundle
from tests.conftest import tracking_restored
from training import evaluate, train
from training.modelling.search import SearchResult
from training.tracking import search_runs

pytestmark = pytest.mark.integration
EXPERIMENT = "search-runs-test"
State = optuna.trial.TrialState
X = optuna.distributions.FloatDistribution(0.0, 1.0)
KIND = optuna.distributions.CategoricalDistribution(["a", "b"])


@pytest.fixture()
def mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLFLOW_TRACKING_URI on a temporary store, as on GKE (so stages that call
    ``registry.configure(experiment)`` without a root write nowhere in the project)."""
    import mlflow as mlflow_module

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with tracking_restored():
        mlflow_module.set_tracking_uri(uri)
        mlflow_module.create_experiment(
            EXPERIMENT, artifact_location=(tmp_path / "mlruns").as_uri()
        )
        mlflow_module.set_experiment(EXPERIMENT)
        yield mlflow_module


def trial(state: State, params: dict[str, Any], means: list[float]) -> optuna.trial.FrozenTrial:
    """A finished trial as the search leaves it: running mean AUPRC reported per fold."""
    done = state == State.COMPLETE
    folds = [k * v - (k - 1) * (means[k - 2] if k > 1 else 0.0) for k, v in enumerate(means, 1)]
    return optuna.trial.create_trial(
        state=state,
        value=means[-1] if done else None,
        params=params,
        distributions={k: {"x": X, "kind": KIND}[k] for k in params},
        intermediate_values=dict(enumerate(means, 1)),
        user_attrs={"fold_auprc": folds} if done else {},
    )


def result(trials: list[optuna.trial.FrozenTrial]) -> SearchResult:
    study = optuna.create_study(direction="maximize")
    for t in trials:
        study.add_trial(t)
    best = study.best_trial
    return SearchResult(study, None, [], best.user_attrs["fold_auprc"], 1.0)


def studies() -> dict[str, SearchResult]:
    return {
        "classifier": result(
            [
                trial(State.COMPLETE, {"x": 0.1, "kind": "a"}, [0.5, 0.6]),
                trial(State.COMPLETE, {"x": 0.7, "kind": "b"}, [0.7, 0.8]),
                trial(State.PRUNED, {"x": 0.9, "kind": "a"}, [0.2]),
                trial(State.COMPLETE, {"x": 0.4, "kind": "b"}, [0.6, 0.65]),
                trial(State.FAIL, {"x": 0.3}, []),
            ]
        ),
        "autoencoder": result([trial(State.COMPLETE, {"x": 0.5}, [0.3, 0.4])]),
        "constant": result(
            [
                trial(State.COMPLETE, {"x": 0.5}, [0.3, 0.4]),
                trial(State.COMPLETE, {"x": 0.5}, [0.35, 0.45]),
            ]
        ),
    }


def children(mlflow: Any, parent: str) -> dict[str, Any]:
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = client.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=1000
    )
    return {r.info.run_name: r for r in runs}


def test_every_trial_is_a_child_run_with_its_folds(mlflow: Any) -> None:
    with mlflow.start_run(run_name="parent") as parent:
        logged = search_runs.log_search(mlflow, studies())
    runs = children(mlflow, parent.info.run_id)
    assert len(runs) == 5 + 1 + 2
    assert {n for n in runs if n.startswith("classifier-")} == {
        f"classifier-trial-{i}" for i in range(5)
    }
    assert sorted(logged["classifier"]["children"]) == sorted(
        runs[f"classifier-trial-{i}"].info.run_id for i in range(5)
    )
    states = {n: r.data.tags["trial_state"] for n, r in runs.items() if "classifier" in n}
    assert states == {
        "classifier-trial-0": "COMPLETE",
        "classifier-trial-1": "COMPLETE",
        "classifier-trial-2": "PRUNED",
        "classifier-trial-3": "COMPLETE",
        "classifier-trial-4": "FAIL",
    }
    best = runs["classifier-trial-1"]
    assert best.data.tags["study"] == "classifier"
    assert best.data.params == {"x": "0.7", "kind": "b"}
    assert best.data.metrics["mean_fold_auprc"] == pytest.approx(0.8)
    client = mlflow.MlflowClient()
    folds = client.get_metric_history(best.info.run_id, "fold_auprc")
    assert [(p.step, round(p.value, 9)) for p in folds] == [(1, 0.7), (2, 0.9)]
    pruned = runs["classifier-trial-2"]
    assert "mean_fold_auprc" not in pruned.data.metrics
    assert pruned.data.metrics["fold_auprc"] == pytest.approx(0.2)


def test_best_trial_and_importances_are_the_parents_artifacts(mlflow: Any) -> None:
    found = studies()
    with mlflow.start_run(run_name="parent") as parent:
        search_runs.log_search(mlflow, found)
    run_id = parent.info.run_id
    client = mlflow.MlflowClient()
    listed = {a.path for a in client.list_artifacts(run_id, "search")}
    assert listed == {
        "search/classifier_best_trial.json",
        "search/classifier_param_importances.png",
        "search/autoencoder_best_trial.json",
        "search/constant_best_trial.json",
    }
    best = mlflow.artifacts.load_dict(f"runs:/{run_id}/search/classifier_best_trial.json")
    study = found["classifier"].study
    assert best["number"] == study.best_trial.number == 1
    assert best["params"] == study.best_params == {"x": 0.7, "kind": "b"}
    assert best["value"] == pytest.approx(study.best_value)
    assert best["fold_auprc"] == pytest.approx([0.7, 0.9])
    assert (best["trials"], best["complete"]) == (5, 3)
    assert set(best["importances"]) == {"x", "kind"}
    assert sum(best["importances"].values()) == pytest.approx(1.0)
    assert best["importance_note"] is None
    png = Path(client.download_artifacts(run_id, "search/classifier_param_importances.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    tags = client.get_run(run_id).data.tags
    assert tags["search.classifier.importance"] == "plotted"
    assert tags["search.autoencoder.importance"].startswith("skipped: 1 completed trial")
    assert tags["search.constant.importance"] == (
        "skipped: no parameter varies across the completed trials"
    )
    ae = mlflow.artifacts.load_dict(f"runs:/{run_id}/search/autoencoder_best_trial.json")
    assert ae["importances"] == {} and "at least 2" in ae["importance_note"]


def test_evaluate_resumes_the_train_run(
    mlflow: Any, tiny_trained: Any, tiny_params: dict[str, Any], tmp_path: Path
) -> None:
    result, parts, features = tiny_trained
    bundle_dir, report = tmp_path / "bundle", tmp_path / "metrics/train.json"
    version = train.save_result(
        result, bundle_dir, report, 0.0, partial(train.track, result, experiment=EXPERIMENT)
    )
    run_id = json.loads(report.read_text())["mlflow_run_id"]
    trials = sum(len(s.study.trials) for s in result.studies.values())
    assert len(children(mlflow, run_id)) == trials

    params = {**tiny_params, "evaluate": {**tiny_params["evaluate"], "experiment": EXPERIMENT}}
    results = {"bundle_version": version, "test": {"auprc": 0.5, "roc_auc": 0.9}}
    plots = tmp_path / "plots"
    plots.mkdir()
    bundle = load_bundle(bundle_dir)
    gate = evaluate.track(
        bundle_dir, bundle, parts["test"], results, params, plots, features, report
    )
    assert gate["run_id"] == run_id and gate["resumed_train_run"]
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.run_name == f"train-{version}"
    assert run.data.params["train.imbalance"] == result.report["classifier"]["selected"]
    assert run.data.params["train.fusion_candidate"] == result.report["ensemble"]["chosen"]
    assert run.data.metrics["test.auprc"] == 0.5
    chosen = result.report["ensemble"]["chosen"]
    assert run.data.metrics[f"train.fusion.{chosen}.mean"] == pytest.approx(
        result.report["ensemble"]["candidates"][chosen]["mean"]
    )
    versions = mlflow.MlflowClient().search_model_versions(f"run_id = '{run_id}'")
    assert [str(v.version) for v in versions] == [gate["version"]]

    # A run of another bundle, or one the store does not know, is not resumed.
    assert evaluate.train_run(mlflow, report, "another-bundle") is None
    report.write_text(json.dumps({"mlflow_run_id": "0" * 32}))
    again = evaluate.track(
        bundle_dir, bundle, parts["test"], results, params, plots, features, report
    )
    assert again["run_id"] != run_id and not again["resumed_train_run"]


def test_external_tracks_its_search_with_mlflow(mlflow: Any, tmp_path: Path) -> None:
    from tests.training.test_external import _handbook_frame, _run, _small_params

    params = yaml.safe_load(_small_params(tmp_path).read_text())
    params["evaluate"]["experiment"] = EXPERIMENT
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    data = tmp_path / "handbook.csv"
    _handbook_frame().to_csv(data, index=False)
    output = _run(tmp_path, "handbook", data, tmp_path / "params.yaml", "--mlflow")
    run = mlflow.MlflowClient().get_run(output["mlflow_run_id"])
    assert run.info.run_name == "external-handbook"
    assert run.data.tags["schema"] == "handbook"
    assert run.data.params["train.imbalance"] == output["imbalance_method"]
    assert run.data.metrics["test.auprc"] == output["auprc"]
    trials = {name: output["search"][name]["trials"] for name in ("classifier", "autoencoder")}
    names = sorted(children(mlflow, run.info.run_id))
    assert names == sorted(
        f"{name}-trial-{i}" for name, count in trials.items() for i in range(count)
    )
