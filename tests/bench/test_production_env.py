"""The service under ``make bench`` runs as deployed: the settings of k8s/base where they
apply on loopback, the fraud-rules ConfigMap's rule set, a challenger in shadow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.core.config import Settings
from benchmarks.harness import (
    KUSTOMIZATION,
    POD_ONLY,
    SETTINGS_ENV,
    configmap_file,
    production_env,
    read_env_file,
    write_rules_file,
)


def test_the_rule_file_is_the_configmaps_rules_yaml(tmp_path: Path) -> None:
    path = write_rules_file(tmp_path)
    assert path == tmp_path / "fraud-rules" / "rules.yaml"
    text = path.read_text()
    assert text == (KUSTOMIZATION.parent / "rules.yaml").read_text()
    rules = yaml.safe_load(text)
    assert rules["version"].startswith("deployed-") and rules["rules"]


def test_a_configmap_file_is_read_from_its_generator(tmp_path: Path) -> None:
    (tmp_path / "policy-v2.yaml").write_text("version: two\n")
    (tmp_path / "other.yaml").write_text("x: 1\n")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "configMapGenerator": [
                    {"name": "unrelated", "files": ["other.yaml"]},
                    {"name": "fraud-rules", "files": ["other.yaml", "rules.yaml=policy-v2.yaml"]},
                ]
            }
        )
    )
    kustomization = tmp_path / "kustomization.yaml"
    assert configmap_file(kustomization, "fraud-rules", "rules.yaml") == "version: two\n"
    with pytest.raises(KeyError, match="no file missing.yaml"):
        configmap_file(kustomization, "fraud-rules", "missing.yaml")
    with pytest.raises(KeyError, match="no ConfigMap absent"):
        configmap_file(kustomization, "absent", "rules.yaml")


def test_the_env_file_parser_skips_comments(tmp_path: Path) -> None:
    env = tmp_path / "settings.env"
    env.write_text("# a comment\n\nA=1\nB = two=2\n  # indented\n")
    assert read_env_file(env) == {"A": "1", "B": "two=2"}


def test_production_env_is_the_deployed_settings_on_loopback(tmp_path: Path) -> None:
    rules = write_rules_file(tmp_path)
    env = production_env(8300, tmp_path, Path("models/bundle"), rules, 8303)
    deployed = read_env_file(SETTINGS_ENV)
    # every deployed setting that applies on loopback, with its deployed value
    for name, value in deployed.items():
        if name not in POD_ONLY and name not in (
            "LOG_LEVEL",
            "WORKERS",
            "OMP_NUM_THREADS",
            "RATE_LIMIT_PER_SECOND",
        ):
            assert env[name] == value, name
    # a pod's capacity is measured for many callers: the per-key limit (derived from it) off
    assert env["RATE_LIMIT_PER_SECOND"] == "0"
    assert env["AUDIT_SYNCHRONOUS"] == "FULL"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == deployed["OTEL_TRACES_SAMPLER_ARG"]
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["ADMISSION_SINGLE_LIMIT"] == deployed["ADMISSION_SINGLE_LIMIT"]
    # the pod-only ones replaced by loopback equivalents, or left out
    assert env["HOST"] == "127.0.0.1" and env["PORT"] == "8300"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:8303"
    assert env["RULES_FILE"] == str(rules)
    assert env["CHALLENGER_URI"] == env["BUNDLE_URI"] == "models/bundle"
    assert env["AUDIT_LOG"] == str(tmp_path / "predictions.sqlite")
    assert "API_KEYS_FILE" not in env and "PII_HASH_KEY_FILE" not in env
    assert "FEATURE_REPO" not in env  # set per store


def test_the_service_accepts_the_production_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = production_env(8300, tmp_path, Path("models/bundle"), write_rules_file(tmp_path), 8303)
    monkeypatch.delenv("API_KEYS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.audit_synchronous == "FULL"
    assert settings.otel_traces_sampler_arg == float(env["OTEL_TRACES_SAMPLER_ARG"])
    assert settings.challenger_uri == "models/bundle"
    assert settings.velocity_push
    assert settings.keys == ()  # API keys off: no secret on loopback
    assert settings.rules_file.read_text() == (KUSTOMIZATION.parent / "rules.yaml").read_text()
