#!/usr/bin/env bash
# Retraining, as the GKE Job runs it in the training image (Dockerfile.train):
#   1. copy the pipeline definition into a writable workspace (the image is read-only),
#   2. pull the data and the run cache from the DVC remote,
#   3. with RECORD_URL (on GKE): when params.yaml says evaluate.promotion: after_shadow,
#      first the verdict on last week's challenger after its week in shadow
#      (python -m training.promote: promote, wait or refuse; only promote moves `champion`);
#      then export the system of record's last RECORD_HISTORY_DAYS (120) days, keep the
#      matured labels (training.inputs.record_history), and run the stages on it: the
#      Spark feature job, Feast, the training set, training, evaluation and registration in
#      MLflow (MLFLOW_TRACKING_URI) with the `challenger` alias and the offline gate's
#      verdict (immediate: `champion` moves when it passes; after_shadow: the verdict waits
#      as tags on the version for next week's promote); without it, `dvc repro evaluate`
#      on the DVC data set and
#   4. push every new output to the DVC remote; then
#   5. publish the Feast registry and every table FEATURE_SERVICE reads to
#      FEATURE_EXPORT_DIR, where the materialization CronJob reads them
#      (python -m feature_repo.online_load publish: the set comes from the definitions),
#   6. record the run in the system of record (RECORD_URL, when set): the registered
#      version, the gate's verdict and the promotion verdict (when one ran), read back as
#      fraud_pipeline_last_success_timestamp_seconds{pipeline="retrain"} by the alert rules.
# Building the serving image from `champion` stays a reviewed step (docs/deploy-gke.md).
#
# Environment: DVC_REMOTE_URL (e.g. gs://bucket/fraud-detection/dvc), FEATURE_EXPORT_DIR,
# MLFLOW_TRACKING_URI, FEATURE_SERVICE (default fraud_detection_v2), and optionally SRC
# (default /opt/fraud-src), WORKSPACE (/work), RECORD_URL and RECORD_PASSWORD_FILE.
set -euo pipefail

src="${SRC:-/opt/fraud-src}"
workspace="${WORKSPACE:-/work}/fraud"
: "${DVC_REMOTE_URL:?set DVC_REMOTE_URL to the DVC remote (gs://...)}"
: "${FEATURE_EXPORT_DIR:?set FEATURE_EXPORT_DIR to the directory the CronJob reads}"

log() { printf '%s retrain: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

started="$(date -u +%Y-%m-%dT%H:%M:%S+00:00)"
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

if [[ -n "${RECORD_URL:-}" ]]; then
  # What production saw: the system of record's history with its matured labels, through
  # the Spark feature job and Feast (docs/data-loop.md); the terminals are reference data
  # from the DVC data set.
  pw=(${RECORD_PASSWORD_FILE:+--password-file "${RECORD_PASSWORD_FILE}"})
  promotion="$(python -c 'import sys, yaml; from pathlib import Path
p = Path(sys.argv[1]); params = yaml.safe_load(p.read_text()) if p.is_file() else {}
print(params.get("evaluate", {}).get("promotion", "immediate"))' params.yaml)"
  if [[ "${promotion}" == after_shadow ]]; then
    # Before evaluate moves the `challenger` alias to this week's version.
    log "promotion verdict on the challenger in shadow"
    promote_out=metrics/promote.json
    python -m training.promote --record-url "${RECORD_URL}" "${pw[@]}" --params params.yaml \
      --out "${promote_out}"
  fi
  log "export ${RECORD_HISTORY_DAYS:-120} days of the system of record"
  python -m system_of_record export --url "${RECORD_URL}" "${pw[@]}" --out export \
    --days "${RECORD_HISTORY_DAYS:-120}"
  python -m training.inputs.record_history --export export --terminals data/terminals.parquet \
    --out record-data --params params.yaml --params-out params.yaml
  log "features (Spark), Feast, training set, train, evaluate"
  python -m training.features --transactions export --terminals data/terminals.parquet
  python -m training.materialize
  python -m training.training_set --data record-data
  python -m training.train
  python -m training.evaluate
else
  log "dvc repro evaluate"
  dvc repro evaluate

  log "push outputs"
  dvc push --run-cache
fi

log "publish the registry and the tables of ${FEATURE_SERVICE:-fraud_detection_v2} to ${FEATURE_EXPORT_DIR}"
python -m feature_repo.online_load publish --repo feature_repo \
  --feature-service "${FEATURE_SERVICE:-fraud_detection_v2}" --to "${FEATURE_EXPORT_DIR}"
python -m training.reporting.summary

if [[ -n "${RECORD_URL:-}" ]]; then
  detail="$(python -c 'import json, sys; g = json.load(open(sys.argv[1]))
d = {k: g.get(k) for k in ("model_name", "version", "promoted", "reason")}
if sys.argv[2]:
    v = json.load(open(sys.argv[2]))
    d["promotion"] = {k: v.get(k) for k in ("verdict", "challenger", "champion_after", "reason")}
print(json.dumps(d))' metrics/gate.json "${promote_out:-}")"
  log "record the run in the system of record: ${detail}"
  python -m system_of_record job-run --url "${RECORD_URL}" \
    ${RECORD_PASSWORD_FILE:+--password-file "${RECORD_PASSWORD_FILE}"} \
    --job retrain --status succeeded --started "${started}" --detail "${detail}"
fi
log "done"
