"""Find and load the model bundle named by the ``bundle_uri`` setting.

``bundle_uri`` is a bundle directory, or an MLflow model URI (``models:/NAME@ALIAS`` or
``models:/NAME/VERSION``) whose ``artifacts/bundle`` directory is downloaded once at
start-up (MLflow is imported only then). The bundle is proven before use (hashes, values,
the FeatureService's feature list, a trial score: :mod:`fraud_model.verify`).
Any problem yields ``LoadedModel(bundle=None, problem=...)``: at start-up the service then
scores with the rules fallback and says why; a reload keeps the model it has.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fraud_model.bundle import BundleError, ModelBundle, load_bundle
from fraud_model.verify import UNPROBED

log = logging.getLogger(__name__)

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class LoadedModel:
    """The outcome of loading: a verified bundle, or the reason there is none."""

    uri: str
    bundle: ModelBundle | None
    problem: str | None = None
    alias: str | None = None
    registry_version: str | None = None


def _download(uri: str, tracking_uri: str | None) -> tuple[Path, str | None, str | None]:
    match = _MODEL_URI.match(uri)
    if match is None:
        raise BundleError(f"not a models:/NAME@ALIAS or models:/NAME/VERSION URI: {uri}")
    try:
        import mlflow
    except ImportError as exc:  # pragma: no cover - mlflow-skinny is in requirements-api
        raise BundleError("MLflow model URIs need the mlflow package") from exc
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    name, alias = match["name"], match["alias"]
    try:
        version = (
            client.get_model_version_by_alias(name, alias).version if alias else match["version"]
        )
        target = tempfile.mkdtemp(prefix="bundle-")
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=target
        )
    except Exception as exc:  # MLflow raises many types; all mean "no bundle"
        raise BundleError(f"cannot fetch {uri} from MLflow: {exc}") from exc
    return Path(path) / "artifacts" / "bundle", alias, str(version)


def load_model(
    uri: str,
    tracking_uri: str | None = None,
    expected_features: Sequence[str] | None = None,
    feature_source: str = "the FeatureService",
    require_probes: bool = False,
) -> LoadedModel:
    """Load, verify and prove the bundle at ``uri``; never raises. ``expected_features``
    is the FeatureService's feature list (None without a feature store);
    ``require_probes`` refuses a bundle written before trial scoring (reloads)."""
    try:
        if uri.startswith("models:/"):
            directory, alias, version = _download(uri, tracking_uri)
        else:
            directory, alias, version = Path(uri), None, None
        if not directory.is_dir():
            raise BundleError(f"no bundle directory at {directory}")
        bundle = load_bundle(directory, expected_features, feature_source, require_probes)
    except BundleError as exc:
        log.error("model bundle refused", extra={"fields": {"why": str(exc)}})
        return LoadedModel(uri=uri, bundle=None, problem=str(exc))
    fields = {"version": bundle.version, "proof": bundle.proof}
    if bundle.proof == UNPROBED:  # a bundle written before trial scoring
        log.warning("model bundle not trial-scored: re-export it", extra={"fields": fields})
    else:
        log.info("model bundle proven", extra={"fields": fields})
    return LoadedModel(uri=uri, bundle=bundle, alias=alias, registry_version=version)
