#!/usr/bin/env bash
# Re-pin every requirements file from the top-level *.in files.
# One joint resolve (constraints.txt) keeps api, train and dev compatible in one venv;
# each layer is then compiled against it so the serving image gets only what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
uv="${UV:-.venv/bin/uv}"
opts=(--python-version 3.11 --quiet --no-header --annotation-style line)
"$uv" pip compile "${opts[@]}" requirements/all.in -o requirements/constraints.txt
for layer in api train dev; do
  "$uv" pip compile "${opts[@]}" -c requirements/constraints.txt requirements/$layer.in -o requirements-$layer.txt
done
# checkov lives in its own virtualenv: resolved alone, not against the joint constraints.
"$uv" pip compile "${opts[@]}" requirements/checkov.in -o requirements-checkov.txt
