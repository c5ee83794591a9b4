"""MLflow tracking and the model registry: runs, the ``fraud-ensemble`` model, aliases.

Tracking defaults to a SQLite database in the project (``mlflow.db``, artifacts under
``mlruns/``); ``MLFLOW_TRACKING_URI`` points it at a server instead (GKE). Aliases, not
the deprecated stages: every new version becomes ``challenger`` and is promoted to
``champion`` only when the promotion gate passes on the same test set.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CHAMPION, CHALLENGER = "champion", "challenger"
SERVING_PACKAGES = ("lightgbm", "numpy", "pandas", "scikit-learn", "mlflow")


def configure(experiment: str, root: Path = ROOT) -> Any:
    """Point MLflow at the local SQLite store unless ``MLFLOW_TRACKING_URI`` is set."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_TRACKING_URI

    if not MLFLOW_TRACKING_URI.defined:
        mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
        if mlflow.get_experiment_by_name(experiment) is None:
            mlflow.create_experiment(experiment, artifact_location=(root / "mlruns").as_uri())
    mlflow.set_experiment(experiment)
    return mlflow


def flat_metrics(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metric dicts flattened to ``a.b`` keys, numbers only."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if np.isfinite(value):
                out[name.replace("@", "_at_")] = float(value)
    return out


def pip_requirements() -> list[str]:
    pins = []
    for package in SERVING_PACKAGES:
        try:
            pins.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            continue
    return pins


def log_model_version(
    mlflow: Any,
    bundle_dir: Path,
    model_name: str,
    input_example: Any,
) -> str:
    """Log the bundle as a pyfunc model, register it, and alias it ``challenger``."""
    from mlflow.models import infer_signature

    from training.tracking.pyfunc_model import BUNDLE_ARTIFACT, FraudEnsembleModel

    model = FraudEnsembleModel()
    model.load_context(type("Context", (), {"artifacts": {BUNDLE_ARTIFACT: str(bundle_dir)}})())
    output = model.predict(None, input_example)  # type: ignore[no-untyped-call]
    signature = infer_signature(input_example, output)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements(),
        registered_model_name=model_name,
    )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(model_name, CHALLENGER, version)
    return version


def alias_version(mlflow: Any, model_name: str, alias: str) -> str | None:
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def download_bundle(mlflow: Any, model_name: str, version: str) -> Path:
    """A registered version's bundle directory, downloaded to a temporary directory."""
    target = Path(tempfile.mkdtemp(prefix="bundle-"))
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{model_name}/{version}", dst_path=str(target)
    )
    return Path(path) / "artifacts" / "bundle"


@dataclass(frozen=True)
class GateResult:
    challenger: str
    champion_before: str | None
    challenger_auprc: float
    champion_auprc: float | None
    tolerance: float
    promoted: bool

    @property
    def reason(self) -> str:
        if self.champion_auprc is None:
            return "no champion yet: the first version is promoted"
        verdict = "passes" if self.promoted else "fails"
        return (
            f"challenger AUPRC {self.challenger_auprc:.4f} vs champion {self.champion_auprc:.4f} "
            f"(tolerance {self.tolerance}): {verdict}"
        )


def promotion_gate(challenger_auprc: float, champion_auprc: float | None, tolerance: float) -> bool:
    """Promote unless the challenger is worse than the champion by more than the tolerance."""
    return champion_auprc is None or challenger_auprc >= champion_auprc - tolerance


def apply_gate(
    mlflow: Any,
    model_name: str,
    challenger: str,
    challenger_auprc: float,
    champion_auprc: float | None,
    tolerance: float,
) -> GateResult:
    """Move the ``champion`` alias to the challenger when the gate passes."""
    champion = alias_version(mlflow, model_name, CHAMPION)
    if champion == challenger:
        champion_auprc = challenger_auprc
    promoted = promotion_gate(challenger_auprc, champion_auprc, tolerance)
    if promoted:
        mlflow.MlflowClient().set_registered_model_alias(model_name, CHAMPION, challenger)
    return GateResult(challenger, champion, challenger_auprc, champion_auprc, tolerance, promoted)
