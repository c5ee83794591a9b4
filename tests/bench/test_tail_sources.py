"""The tail-sources ablation: production, each part off alone, all off; each variant's
environment is a valid configuration that really switches its part off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from benchmarks.records import replace_section
from benchmarks.tail_sources import (
    ALL_OFF,
    PARTS,
    PRODUCTION,
    TITLE,
    Workload,
    environment,
    pause_table,
    section,
    table,
    variants,
)


def _work(tmp_path: Path) -> Workload:
    return Workload(
        Path("python"), tmp_path / "bundle", tmp_path / "repo", [b"{}"], 2.0, 10, (0.1, 0.75),
        tmp_path,
    )  # fmt: skip


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in ("CHALLENGER_URI", "OTEL_TRACES_EXPORTER", "RULES_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_comes_first_then_each_part_alone_then_all_off() -> None:
    names = list(variants())
    assert names[0] == PRODUCTION and names[-1] == ALL_OFF
    assert names[1:-1] == list(PARTS)
    every = variants()[ALL_OFF]
    assert all(every[key] == value for part in PARTS.values() for key, value in part.items())


def test_production_has_every_part_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = environment(_work(tmp_path), 8123, PRODUCTION, {}, 4318)
    settings = _settings(env, monkeypatch)
    assert settings.challenger_uri == str(tmp_path / "bundle")
    assert settings.otel_traces_exporter == "otlp"
    assert settings.audit_synchronous == "FULL"
    assert settings.velocity_push and settings.dashboard_enabled
    assert settings.log_level == "INFO"
    assert settings.feature_repo == tmp_path / "repo"


@pytest.mark.parametrize("name", list(PARTS))
def test_each_variant_switches_its_part_off_and_only_it(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = _work(tmp_path)
    production = environment(work, 8123, PRODUCTION, {}, 4318)
    env = environment(work, 8123, name, PARTS[name], 4318)
    changed = {k for k in production.keys() | env.keys() if production.get(k) != env.get(k)}
    # the variant's own state directory aside, only its part's settings differ
    assert changed - {"LABEL_LOG", "AUDIT_LOG", "RULES_FILE"} == set(PARTS[name])
    on, off = _settings(production, monkeypatch), _settings(env, monkeypatch)
    assert on.model_dump(include=_fields(PARTS[name])) != off.model_dump(
        include=_fields(PARTS[name])
    )


def _fields(overrides: dict[str, Any]) -> set[str]:
    return {key.lower() for key in overrides}


def _record() -> dict[str, Any]:
    def v(cpu: float, p99: float) -> dict[str, Any]:
        level = {"p50_ms": 4.0, "p99_ms": p99, "errors": 3}
        return {
            "cpu_ms_per_request": cpu,
            "unloaded": {"p50_ms": 3.5, "p99_ms": 8.0},
            "paced": {"p50_ms": 5.0, "p99_ms": 9.5},
            "saturation": {"throughput_rps": 560.0},
            "open_loop": [{**level, "offered_rps": 56.0}, {**level, "offered_rps": 420.0}],
        }

    return {
        "machine": {"date": "d", "commit": "abc", "cores": 2, "cpu": "c"},
        "load_average": {"before": 0.1, "after": 0.2},
        "command": "python -m benchmarks.tail_sources",
        "settings": {"seconds": 8.0, "unloaded_requests": 1000, "shares": [0.1, 0.75]},
        "variants": {PRODUCTION: v(3.2, 111.0), ALL_OFF: v(1.9, 12.5)},
        "scorer_after_pauses": [
            {"pause_ms": 0.0, "busy_wait": False, "p50_us": 117.0, "p99_us": 196.0},
            {"pause_ms": 1.0, "busy_wait": False, "p50_us": 166.0, "p99_us": 321.0},
            {"pause_ms": 18.0, "busy_wait": False, "p50_us": 584.0, "p99_us": 919.0},
            {"pause_ms": 18.0, "busy_wait": True, "p50_us": 462.0, "p99_us": 755.0},
        ],
    }


def test_the_table_has_a_row_per_variant_and_a_column_per_rate() -> None:
    lines = table(_record()).splitlines()
    assert "at 56 req/s (10%)" in lines[0] and "at 420 req/s (75%)" in lines[0]
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|")
    assert lines[2].startswith(f"| {PRODUCTION} | 3.20 | 3.50 | 8.00 | 560 | 4.0 / 111.0")
    assert lines[3].startswith(f"| {ALL_OFF} | 1.90 |") and lines[3].endswith("| 3 |")


def test_the_section_replaces_itself_in_benchmarks_md(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    replace_section(page, TITLE, section(_record()))
    replace_section(page, TITLE, section(_record()))
    text = page.read_text()
    assert text.count(TITLE) == 1 and "kept" in text and "load average 0.1 before" in text


def test_the_pause_table_sets_back_to_back_beside_paced() -> None:
    lines = pause_table(_record()).splitlines()
    assert lines[0] == "| what | back to back p50 / p99 | 18 ms pause p50 / p99 |"
    assert lines[2] == f"| HTTP, {PRODUCTION} (ms) | 3.50 / 8.00 | 5.00 / 9.50 |"
    scorer = lines[-1]
    assert scorer.endswith("| 117 / 196 | 584 / 919 |")
    assert "1 ms pause 166 / 321" in scorer and "18 ms busy-wait 462 / 755" in scorer
