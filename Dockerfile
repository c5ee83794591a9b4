# syntax=docker/dockerfile:1
# The scoring service image: FastAPI app, ensemble bundle, Feast repository.
#
# Build it AFTER `make train` (or `make demo`): models/bundle/ and feature_repo/data/
# {registry.db,online_store.db} are pipeline outputs, git-ignored, and must exist in the
# build context. models/card/ (the model card, from `make demo` or `make audit`) is
# optional: without it the dashboard says there is no card.
#   docker build -t fraud-scoring:0.4.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 fraud-scoring:0.4.0
# (the baked SQLite store belongs to the service user, so velocity pushes work). Read-only
# root filesystem, as the Kubernetes pod runs it: the store must be on a writable volume, so
# copy the feature repository there first, as the Deployment's init container does; var/
# must be a tmpfs owned by 10001 (Podman 4.3 spells that `--tmpfs /srv/fraud/var:rw,mode=0750,U`):
#   docker run --rm --read-only --tmpfs /tmp \
#     --tmpfs /srv/fraud/var:rw,uid=10001,gid=10001,mode=0750 \
#     -e FEATURE_REPO=var/feature_repo -p 127.0.0.1:8000:8000 fraud-scoring:0.4.0 \
#     sh -c 'cp -R feature_repo var/ && exec python -m app'
# With Podman and no registry: `make images` (tools/images.py builds on a bootstrapped Debian
# base through --build-arg BASE_IMAGE; docs/containers.md).
# The image serves the baked SQLite online store (ENVIRONMENT=local); on GKE the Deployment
# sets ENVIRONMENT=gke, feature_store.gke.yaml (Redis) and the API keys.
# Only requirements-api.txt is installed: no training, MLflow, DVC or dev dependencies.

# The official image's multi-architecture index for 3.11.14-slim-bookworm (its linux/amd64
# manifest is sha256:83f339c1be6340ae1096010fdccf6552ac932d8f410d45d206014916bdf37e48).
# Every stage uses the same base: the venv's interpreter symlink must resolve at run time.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

########################## builder: virtualenv + code tree ##########################
FROM ${BASE_IMAGE} AS builder

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
# models/: .dockerignore lets only bundle/ and (after `make demo` or `make audit`) card/ in.
COPY models/ ./models/
COPY fraud_model/ ./fraud_model/
COPY fraud_rules/ ./fraud_rules/
COPY system_of_record/ ./system_of_record/
COPY app/ ./app/
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash fraud_model fraud_rules system_of_record app feature_repo \
    && chmod -R a+rX,go-w /srv/fraud

# The baked SQLite store (registry and online store) apart: the runtime gives it to the
# service user, since velocity pushes write to it.
COPY feature_repo/data/registry.db feature_repo/data/online_store.db /build/feature_repo_data/
RUN chmod 0644 /build/feature_repo_data/*

################################## runtime ##################################
FROM ${BASE_IMAGE} AS runtime

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
# writable paths are /tmp, /srv/fraud/var (the label and audit logs; Kubernetes mounts
# emptyDirs on both) and feature_repo/data (the baked SQLite store, which velocity pushes
# update when the container runs with a writable root filesystem).
# DL3008: libgomp1 comes from the pinned base image's Debian release; no apt version pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fraud \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin fraud \
    && install -d -o 10001 -g 10001 -m 0750 /srv/fraud/var /srv/fraud/feature_repo/data

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
COPY --from=builder --chown=10001:10001 /build/feature_repo_data/ /srv/fraud/feature_repo/data/
WORKDIR /srv/fraud

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=3)"]

CMD ["python", "-m", "app"]
