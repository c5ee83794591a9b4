"""MLflow tracking and the model registry: runs, the ``fraud-ensemble`` model, aliases.

Tracking defaults to a SQLite database in the project (``mlflow.db``, artifacts under
``mlruns/``); ``MLFLOW_TRACKING_URI`` points it at a server instead (GKE). Aliases, not
the deprecated stages: every new version becomes ``challenger`` and is promoted to
``champion`` only when the promotion gate passes on the same test set: at once
(``evaluate.promotion: immediate``) or, with ``after_shadow``, by ``training.promote``
after its shadow period, the offline verdict waiting as tags on the version.
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
PROMOTION_MODES = ("immediate", "after_shadow")
# Model-version tags of the offline gate's verdict, read by training.promote.
GATE_OFFLINE, GATE_REASON, BUNDLE_VERSION = "gate.offline", "gate.reason", "bundle_version"
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
    def passed(self) -> bool:
        """The offline verdict, whether or not ``champion`` moved."""
        return promotion_gate(self.challenger_auprc, self.champion_auprc, self.tolerance)

    @property
    def reason(self) -> str:
        if self.champion_auprc is None:
            return "no champion yet: the first version is promoted"
        verdict = "passes" if self.passed else "fails"
        held = self.passed and not self.promoted  # after_shadow: training.promote decides
        return (
            f"challenger AUPRC {self.challenger_auprc:.4f} vs champion {self.champion_auprc:.4f} "
            f"(tolerance {self.tolerance}): {verdict}"
            + ("; champion unchanged until the shadow verdict" if held else "")
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
    promotion: str = "immediate",
    bundle_version: str = "",
) -> GateResult:
    """Move the ``champion`` alias to the challenger when the gate passes (``immediate``).

    With ``after_shadow`` the verdict is only recorded as tags on the version
    (``gate.offline`` passes/fails, ``gate.reason``, ``bundle_version``) for
    ``training.promote`` to weigh with the shadow results; a first version (no champion
    to be shadowed beside) is promoted either way.
    """
    if promotion not in PROMOTION_MODES:
        raise ValueError(f"evaluate.promotion must be one of {PROMOTION_MODES}, not {promotion!r}")
    champion = alias_version(mlflow, model_name, CHAMPION)
    if champion == challenger:
        champion_auprc = challenger_auprc
    passed = promotion_gate(challenger_auprc, champion_auprc, tolerance)
    promoted = passed and (promotion == "immediate" or champion is None)
    client = mlflow.MlflowClient()
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, challenger)
    gate = GateResult(challenger, champion, challenger_auprc, champion_auprc, tolerance, promoted)
    if promotion == "after_shadow":
        tags = {
            GATE_OFFLINE: "passes" if passed else "fails",
            GATE_REASON: gate.reason,
            BUNDLE_VERSION: bundle_version,
        }
        for key, value in tags.items():
            client.set_model_version_tag(model_name, challenger, key, value)
    return gate
