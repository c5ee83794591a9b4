"""Quality benchmark: the pipeline against two plain LightGBM baselines on several data sets.

``python -m training.benchmark [--external SCHEMA:PATH ...]`` trains, on each training set,

* ``pipeline``: the whole ensemble exactly as the ``train`` stage fits it
  (:func:`training.modelling.fit.train_ensemble`, ``params.yaml`` ``train``), scored by the
  service's scorer (calibrated probability);
* ``LightGBM tuned``: the pipeline's own classifier member alone (the same Optuna search on
  the same folds, refitted on all training time), scored by its margin;
* ``LightGBM defaults``: ``lightgbm.LGBMClassifier()`` with library defaults on the raw
  training-time rows (NaN left to LightGBM).

Data sets: the simulator's v0 (trained on train + validation, scored on ``test``), the same
models on drifted v1 (``after``), each fraud scenario (every legitimate row plus that
scenario's frauds) of both, and each ``--external`` file (the split, folds and features of
:mod:`training.external`). Writes JSON metrics, a Markdown table and the PR curves.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from training.inputs import public_data as data
from training.inputs.frames import Frame, available_cores, load_parts
from training.inputs.params import load_params
from training.modelling import metrics as m
from training.modelling.decision import CostModel, decision_cost
from training.modelling.fit import TrainConfig, train_ensemble
from training.modelling.folds import external_folds
from training.reporting.quality_table import quality_table, write_pr_curves

MODELS = {
    "pipeline": "pipeline",
    "lightgbm_tuned": "LightGBM tuned",
    "lightgbm_defaults": "LightGBM defaults",
}
REVIEW = 1  # decision tier index of "review" (0 approve .. 3 decline)


def log(message: str) -> None:
    print(f"benchmark: {message}", flush=True)


@dataclass
class Models:
    """The three models of one training set, as score functions, and their training time."""

    bundle_scorer: Any
    defaults: Any
    seconds: dict[str, float]

    def scores(self, x: np.ndarray) -> dict[str, np.ndarray]:
        batch = self.bundle_scorer.score(x)
        return {
            "pipeline": batch.probability,
            "lightgbm_tuned": batch.clf_margin,
            "lightgbm_defaults": self.defaults.predict_proba(x)[:, 1],
        }


def train_models(dev: Frame, features: list[str], config: TrainConfig, threads: int) -> Models:
    """Fit the pipeline (its search gives the tuned classifier) and the defaults baseline."""
    import lightgbm as lgb

    from fraud_model.scorer import EnsembleScorer

    started = time.perf_counter()
    result = train_ensemble(dev, features, config, threads, metadata={"labels": "clean"}, log=log)
    pipeline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    defaults = lgb.LGBMClassifier(random_state=config.seed, n_jobs=threads, verbosity=-1)
    defaults.fit(dev.x, dev.y)
    seconds = {
        "pipeline": pipeline_seconds,
        # The classifier's Optuna search (its fold members included); the final refit on
        # all training time is not timed apart from the pipeline's.
        "lightgbm_tuned": float(result.report["search"]["classifier"]["seconds"]),
        "lightgbm_defaults": time.perf_counter() - started,
    }
    return Models(EnsembleScorer(result.bundle, threads), defaults, seconds)


def policy_cost(
    y: np.ndarray, score: np.ndarray, day: np.ndarray, amount: np.ndarray, k: int, cost: CostModel
) -> float:
    """Cost of reviewing each day's ``k`` highest scores and approving the rest."""
    level = np.where(m.daily_alerts(score, day, k), REVIEW, 0)
    return decision_cost(level, y, amount, cost)


def score_metrics(
    y: np.ndarray,
    score: np.ndarray,
    day: np.ndarray,
    card: np.ndarray | None,
    amount: np.ndarray,
    k: int,
    cost: CostModel,
) -> dict[str, float | None]:
    """Every benchmark metric of one model's scores; card precision is None without cards."""
    return {
        **m.ranking(y, score),
        "card_precision_at_k": (
            None if card is None else m.card_precision_at_k(y, score, day, card, k)
        ),
        "recall_at_k": m.recall_at_budget(y, score, day, k),
        "cost": policy_cost(y, score, day, amount, k, cost),
        "approve_all_cost": float(amount[y == 1].sum()),
    }


def scenario_subsets(y: np.ndarray, scenario: np.ndarray) -> dict[str, np.ndarray]:
    """Per fraud scenario: every legitimate row plus that scenario's frauds."""
    legit = y == 0
    return {str(s): legit | ((y == 1) & (scenario == s)) for s in sorted(set(scenario[y == 1]))}


def evaluate(
    name: str,
    frame: Frame,
    models: Models,
    k: int,
    cost: CostModel,
    has_cards: bool = True,
    scenarios: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the data set (and of its scenario subsets) and its PR curves."""
    scores = models.scores(frame.x)
    day, amount = frame.days, frame.meta["amount"].to_numpy(dtype=np.float64)
    card = frame.meta["customer_id"].to_numpy() if has_cards else None
    subsets = {name: np.ones(len(frame), dtype=bool)}
    if scenarios and "fraud_scenario" in frame.meta:
        scenario = frame.meta["fraud_scenario"].astype(str).to_numpy()
        for s, mask in scenario_subsets(frame.y, scenario).items():
            subsets[f"{name} · {s}"] = mask
    rows = []
    for label, mask in subsets.items():
        y = frame.y[mask]
        rows.append(
            {
                "data_set": label,
                "rows": int(mask.sum()),
                "fraud": int(y.sum()),
                "models": {
                    model: {
                        **score_metrics(
                            y,
                            scores[model][mask],
                            day[mask],
                            None if card is None else card[mask],
                            amount[mask],
                            k,
                            cost,
                        ),
                        "training_seconds": models.seconds[model],
                    }
                    for model in MODELS
                },
            }
        )
    return rows, {"data_set": name, "y": frame.y, "scores": scores}


def external_run(
    spec: str, params: dict[str, Any], config: TrainConfig, threads: int, k: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train and score the three models on a public data set, split as training.external."""
    schema, _, path = spec.partition(":")
    if schema not in data.SCHEMAS or not path:
        raise SystemExit(f"benchmark: --external wants SCHEMA:PATH with SCHEMA in {data.SCHEMAS}")
    dataset = data.build_dataset(data.read_table(Path(path), schema), schema, params)
    gap_days = data.default_gap_days(schema, params)
    split = data.split_by_time(dataset.frame, data.DEFAULT_TEST_FRACTION, gap_days)
    data.check_parts(split.summary)
    dev = split.training_time
    folds = external_folds(config.selection, split.edges, gap_days)
    name = f"{schema}:{Path(path).name}"
    log(f"{name}: training on {len(dev):,} rows")
    models = train_models(dev, dataset.features, replace(config, selection=folds), threads)
    test = split.part("test")
    return evaluate(name, test, models, k, config.decision.cost, has_cards=schema != "ulb")


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    params = load_params(args.params)
    config = TrainConfig.from_params(params["train"])
    k = int(params["evaluate"]["precision_at_k"])
    threads = args.threads or available_cores()
    features, v0 = load_parts(args.training_set, "v0", ("train", "validation", "test"))
    _, v1 = load_parts(args.training_set, "v1", ("after",))
    dev = Frame.concat([v0["train"], v0["validation"]])
    log(f"simulator v0: training on {len(dev):,} rows, {threads} cores")
    models = train_models(dev, features, config, threads)
    rows, curves = [], []
    for name, frame in (("v0 test", v0["test"]), ("v1 drifted", v1["after"])):
        found, curve = evaluate(name, frame, models, k, config.decision.cost)
        rows += found
        curves.append(curve)
    for spec in args.external:
        found, curve = external_run(spec, params, config, threads, k)
        rows += found
        curves.append(curve)
    write_pr_curves(curves, MODELS, args.plot)
    policy = {"k": k, "policy": "review the top k per day, approve the rest"}
    return rows, {**policy, "cost_model": config.decision.cost.as_dict()}


def _finite(value: Any) -> Any:
    """NaN (a class absent) as JSON null."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=Path("artifacts/training_set"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--external",
        action="append",
        default=[],
        metavar="SCHEMA:PATH",
        help=f"a public data set in a training.external schema ({', '.join(data.SCHEMAS)})",
    )
    parser.add_argument("--out", type=Path, default=Path("metrics/quality_benchmark.json"))
    parser.add_argument("--report", type=Path, default=Path("reports/quality_benchmark.md"))
    parser.add_argument("--plot", type=Path, default=Path("reports/quality_benchmark.png"))
    parser.add_argument("--threads", type=int, default=None, help="default: available cores")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows, policy = run(args)
    text = quality_table(rows, MODELS, policy["k"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {**policy, "models": MODELS, "data_sets": m.rounded({"r": rows})["r"]}
    args.out.write_text(json.dumps(_finite(results), indent=2) + "\n")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(f"# Quality benchmark\n\n{text}\n")
    print(text, flush=True)
    log(f"{time.perf_counter() - started:.0f}s -> {args.out}, {args.report}, {args.plot}")


if __name__ == "__main__":
    main()
