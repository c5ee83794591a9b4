# syntax=docker/dockerfile:1
# The scoring service image: FastAPI app, ensemble bundle, Feast repository.
#
# Build it AFTER `make train` (or `make demo` / `dvc repro model_card`): models/bundle/,
# models/card/ (the dashboard's model card) and feature_repo/data/{registry.db,
# online_store.db} are pipeline outputs, git-ignored, and must exist in the build context.
#   docker build -t fraud-scoring:dev .
#   docker run --rm -p 8000:8000 fraud-scoring:dev
# The image serves the baked SQLite online store (ENVIRONMENT=local); on GKE the Deployment
# sets ENVIRONMENT=gke, feature_store.gke.yaml (Redis) and the API keys.
# Only requirements-api.txt is installed: no training, MLflow, DVC or dev dependencies.

########################## builder: virtualenv + code tree ##########################
FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

WORKDIR /build
COPY requirements-api.txt ./

# Every pinned package has a manylinux wheel for CPython 3.11, so no compiler is needed.
# Bytecode is compiled once, hash-based (unchecked): a cold start never recompiles and
# never tries to write __pycache__ into the read-only image.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile -r requirements-api.txt \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv

# The code and the serving artefacts, assembled here so the runtime gets one layer with
# normalised permissions (root-owned, world-readable, writable by nobody else).
WORKDIR /srv/fraud
COPY feature_repo/*.py feature_repo/feature_store.yaml feature_repo/feature_store.gke.yaml \
     ./feature_repo/
COPY feature_repo/data/registry.db feature_repo/data/online_store.db ./feature_repo/data/
COPY models/bundle/ ./models/bundle/
COPY models/card/ ./models/card/
COPY app/ ./app/
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash app feature_repo \
    && chmod -R a+rX,go-w /srv/fraud

################################## runtime ##################################
FROM python:3.11.14-slim-bookworm AS runtime

# CI passes --build-arg SOURCE_URL=<repository URL> --build-arg REVISION=<git sha>.
ARG SOURCE_URL=""
ARG REVISION=""
LABEL org.opencontainers.image.title="fraud-scoring" \
      org.opencontainers.image.description="Real-time card fraud scoring API: Feast online features, autoencoder + LightGBM ensemble, FastAPI" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.4.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}"

# LightGBM needs OpenMP (libgomp1) at run time. The service user is UID/GID 10001; its only
# writable paths are /tmp and /srv/fraud/var (the feedback label log; Kubernetes mounts
# emptyDirs on both).
# DL3008: libgomp1 comes from the pinned base image's Debian release; no apt version pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fraud \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin fraud \
    && install -d -o 10001 -g 10001 -m 0750 /srv/fraud/var

# One worker per pod with a one-core limit: native thread pools (OpenMP for LightGBM,
# OpenBLAS for NumPy) stay at one thread instead of contending for the same core.
ENV OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/srv/fraud \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8000 \
    ENVIRONMENT=local

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/fraud /srv/fraud
WORKDIR /srv/fraud

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=3)"]

CMD ["python", "-m", "app"]
