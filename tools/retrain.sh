#!/usr/bin/env bash
# Retraining, as the GKE Job runs it in the training image (Dockerfile.train):
#   1. copy the pipeline definition into a writable workspace (the image is read-only),
#   2. pull the data and the run cache from the DVC remote,
#   3. `dvc repro evaluate`: features, Feast registry, training, evaluation on the
#      time-later test set, and registration in MLflow (MLFLOW_TRACKING_URI) as a new
#      version with the `challenger` alias,
#   4. push every new output to the DVC remote, and
#   5. publish the Feast registry and every table FEATURE_SERVICE reads to
#      FEATURE_EXPORT_DIR, where the materialization CronJob reads them
#      (python -m feature_repo.online_load publish: the set comes from the definitions).
# Promotion to `champion` and the new serving image stay a reviewed step (docs/deploy-gke.md).
#
# Environment: DVC_REMOTE_URL (e.g. gs://bucket/fraud-detection/dvc), FEATURE_EXPORT_DIR,
# MLFLOW_TRACKING_URI, FEATURE_SERVICE (default fraud_detection_v2), and optionally SRC
# (default /opt/fraud-src) and WORKSPACE (/work).
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

log "publish the registry and the tables of ${FEATURE_SERVICE:-fraud_detection_v2} to ${FEATURE_EXPORT_DIR}"
python -m feature_repo.online_load publish --repo feature_repo \
  --feature-service "${FEATURE_SERVICE:-fraud_detection_v2}" --to "${FEATURE_EXPORT_DIR}"
python -m training.reporting.summary
log "done"
