"""Settings: defaults, environment overrides, keys from a secret file, unsafe values refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings

PG = "postgresql://app@127.0.0.1:1/fraud"


def test_defaults_are_the_local_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVIRONMENT", "API_KEYS", "API_KEYS_FILE", "PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.environment, settings.host, settings.port, settings.workers) == (
        "local",
        "127.0.0.1",
        8000,
        1,
    )
    assert settings.keys == ()
    assert settings.max_body_bytes == 1_048_576


def test_environment_variables_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("API_KEYS", " a-key , b-key ,")
    settings = Settings()
    assert settings.port == 9001
    assert settings.keys == ("a-key", "b-key")
    assert "a-key" not in repr(settings)


def test_keys_from_a_mounted_file_and_gke_requires_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_KEYS", raising=False)
    monkeypatch.setenv("RECORD_URL", PG)
    with pytest.raises(ValidationError, match="needs PII_HASH_KEY"):
        Settings(environment="gke", api_keys="k")
    with pytest.raises(ValidationError, match="needs API keys"):
        Settings(environment="gke", pii_hash_key="pepper")
    secret = tmp_path / "keys"
    secret.write_text("old-key\nnew-key\n")
    settings = Settings(environment="gke", api_keys_file=secret, pii_hash_key="pepper")
    assert settings.keys == ("old-key", "new-key")
    with pytest.raises(ValidationError, match="debug"):
        Settings(environment="gke", api_keys_file=secret, pii_hash_key="pepper", debug=True)


def test_the_pii_hash_key_file_wins_and_satisfies_gke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORD_URL", PG)
    keys, pepper = tmp_path / "api-keys", tmp_path / "pii-hash-key"
    keys.write_text("k\n")
    pepper.write_text("file-pepper\n")
    settings = Settings(
        environment="gke", api_keys_file=keys, pii_hash_key_file=pepper, pii_hash_key="env"
    )
    assert settings.hash_key == b"file-pepper"
    assert Settings(pii_hash_key="env", pii_hash_key_file=tmp_path / "absent").hash_key == b"env"
    with pytest.raises(ValidationError, match="needs PII_HASH_KEY"):
        Settings(environment="gke", api_keys_file=keys, pii_hash_key_file=tmp_path / "absent")


def test_gke_needs_a_shared_system_of_record(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("k\n")
    gke = {"environment": "gke", "api_keys_file": keys, "pii_hash_key": "pepper"}
    with pytest.raises(ValidationError, match="RECORD_URL=postgresql"):
        Settings(**gke)
    with pytest.raises(ValidationError, match="RECORD_URL=postgresql"):
        Settings(**gke, record_url="sqlite:///var/record.sqlite")
    assert Settings(**gke, record_url=PG).record_target == PG
    local = Settings(audit_log=tmp_path / "state" / "predictions.sqlite")
    assert local.record_target == f"sqlite:///{tmp_path / 'state' / 'record.sqlite'}"


@pytest.mark.parametrize("field,value", [("port", 0), ("workers", 0), ("environment", "prod")])
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_python_m_app_passes_the_server_settings_to_uvicorn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    import uvicorn

    collecting = gc.isenabled()
    import app.__main__ as entry  # turns the collector off for a fast start-up...

    if collecting:
        gc.enable()  # ...which the rest of this test session must not inherit
    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("PORT", "9002")
    monkeypatch.delenv("KEEP_ALIVE_SECONDS", raising=False)
    entry.main()
    # Idle connections outlive a Google Cloud load balancer's 600 s, so the balancer
    # never sends a request on a connection the pod is closing.
    assert seen["timeout_keep_alive"] == 620
    assert seen["timeout_graceful_shutdown"] == entry.GRACEFUL_SHUTDOWN_SECONDS
    assert (seen["host"], seen["port"], seen["factory"]) == ("127.0.0.1", 9002, True)
    monkeypatch.setenv("KEEP_ALIVE_SECONDS", "75")
    entry.main()
    assert seen["timeout_keep_alive"] == 75


LIMIT_PREFIXES = (
    "http_",
    "keep_alive_",
    "rate_limit_",
    "velocity_max_pending",
    "admission_",
    "dashboard_upload_",
    "dashboard_sign_in",
    "dashboard_revoked_",
    "velocity_max_future_",
    "file_check_",
    "log_health_",
    "max_body_",
    "max_batch",
)


def test_every_limit_is_documented_with_its_default() -> None:
    """SECURITY.md's Limits table and docs/reliability.md name every limit setting, with
    the default the code has (docs that drift from the code mislead an operator)."""
    root = Path(__file__).resolve().parents[2]
    security = root.joinpath("SECURITY.md").read_text()
    table = security[security.index("## Limits") : security.index("## The container")]
    reliability = root.joinpath("docs", "reliability.md").read_text()
    limits = [name for name in Settings.model_fields if name.startswith(LIMIT_PREFIXES)]
    assert len(limits) >= 20
    for name in limits:
        variable = name.upper()
        row = next((line for line in table.splitlines() if f"`{variable}`" in line), None)
        assert row is not None, f"{variable} is not in SECURITY.md's Limits table"
        default = Settings.model_fields[name].default
        if isinstance(default, bool) or default is None:
            continue
        shown = f"{default:,}" if isinstance(default, int) else f"{default:g}"
        if default == 0:
            shown = "0: "
        if name == "max_body_bytes":
            shown = f"{default // 1_048_576} MiB"
        if name == "http_linger_bytes":
            shown = f"{default // 1_048_576} MiB"
        assert f"`{variable}` ({shown}" in row, (
            f"{variable}: SECURITY.md does not show its default {shown}: {row}"
        )
        assert variable in reliability, f"{variable} is not in docs/reliability.md"
