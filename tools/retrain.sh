#!/usr/bin/env bash
# Retraining, as the GKE Job runs it in the training image (Dockerfile.train):
#   1. copy the pipeline definition into a writable workspace (the image is read-only),
#   2. pull the data and the run cache from the DVC remote,
#   3. `dvc repro evaluate`: features, Feast registry, training, evaluation on the
#      time-later test set, and registration in MLflow (MLFLOW_TRACKING_URI) as a new
#      version with the `challenger` alias,
#   4. push every new output to the DVC remote, and
#   5. publish the feature tables and the Feast registry to FEATURE_EXPORT_DIR, where the
#      materialization CronJob reads them.
# Promotion to `champion` and the new serving image stay a reviewed step (docs/deploy-gke.md).
#
# Environment: DVC_REMOTE_URL (e.g. gs://bucket/fraud-detection/dvc), FEATURE_EXPORT_DIR,
# MLFLOW_TRACKING_URI, and optionally SRC (default /opt/fraud-src) and WORKSPACE (/work).
set -euo pipefail

src="${SRC:-/opt/fraud-src}"
workspace="${WORKSPACE:-/work}/fraud"
: "${DVC_REMOTE_URL:?set DVC_REMOTE_URL to the DVC remote (gs://...)}"
: "${FEATURE_EXPORT_DIR:?set FEATURE_EXPORT_DIR to the directory the CronJob reads}"

log() { printf '%s retrain: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

log "workspace ${workspace}"
rm -rf "${workspace}"
mkdir -p "${workspace}"
cp -R "${src}/." "${workspace}/"
chmod -R u+w "${workspace}"
cd "${workspace}"

# No git in the workspace: DVC runs without an SCM and the remote comes from the Job.
dvc config --local core.no_scm true
dvc remote add --local --force job "${DVC_REMOTE_URL}"
dvc config --local core.remote job

log "pull data and run cache from ${DVC_REMOTE_URL}"
dvc pull --run-cache --allow-missing

log "dvc repro evaluate"
dvc repro evaluate

log "push outputs"
dvc push --run-cache

log "publish feature tables and registry to ${FEATURE_EXPORT_DIR}"
mkdir -p "${FEATURE_EXPORT_DIR}"
for name in customer_features.parquet terminal_features.parquet registry.db; do
  cp "feature_repo/data/${name}" "${FEATURE_EXPORT_DIR}/${name}.tmp"
  mv "${FEATURE_EXPORT_DIR}/${name}.tmp" "${FEATURE_EXPORT_DIR}/${name}"
done
python -m training.summary
log "done"
