"""Build the serving and training images with Podman, without a registry (docs/containers.md).

    python tools/images.py build [--serving] [--training] [--context DIR]
                                 [--tag-serving fraud-scoring:0.4.0] [--tag-training ...]

The Dockerfiles' default base (python:3.11.14-slim-bookworm by digest) needs a registry.
Here a stand-in, ``localhost/python:3.11-debian-bookworm``, is bootstrapped from Debian
and passed as ``--build-arg BASE_IMAGE``. When the host reaches package indexes through
a TLS proxy, its pip/apt configuration and CA bundle are mounted read-only into the build
at the same paths; the Dockerfiles themselves know nothing of this.

Other code uses ``podman``, ``containers_env``, ``ensure_base_image`` and ``build``.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = Path(__file__).resolve().with_name("containers.conf")
RUNTIME = "runc"  # crun refuses hybrid cgroup layouts; runc works on both

BASE_TAG = "localhost/python:3.11-debian-bookworm"
RECIPE_LABEL = "org.fraud-detection.base-recipe"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_ARGS = (
    "--variant=minbase",
    "--include=python3.11,python3.11-venv,python3-distutils,python3-pip,python-is-python3,"
    "ca-certificates",
    SUITE,
)
# What the official python images set that the Dockerfiles rely on (PATH=/opt/venv/bin:$PATH).
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
# The official Debian images' sources: updates and security too, so apt-get sees current fixes.
DEBIAN_SOURCES = f"""\
Types: deb
URIs: {MIRROR}
Suites: {SUITE} {SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: {SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

SERVING_TAG = "fraud-scoring:0.4.0"  # k8s/base/kustomization.yaml
TRAINING_TAG = "fraud-training:0.4.0"  # k8s/components/feature-pipeline/kustomization.yaml
CA_BUNDLE_VARS = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PIP_FILE_KEYS = ("cert", "client-cert", "constraint")
APT_NETWORK = re.compile(r"Acquire::\S*(Proxy|CaInfo|CaPath|SslCert|SslKey)", re.IGNORECASE)
APT_FILE = re.compile(r"Acquire::\S*(?:CaInfo|CaPath|SslCert|SslKey)\S*\s+\"([^\"]+)\"", re.I)


@dataclass(frozen=True)
class BuildResult:
    """One image build: its tag, wall time and size."""

    image: str
    dockerfile: str
    seconds: float
    size_bytes: int


# --------------------------------------------------------------------------- podman


def containers_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for podman: ``base`` (default os.environ) plus CONTAINERS_CONF."""
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def podman_command(*args: str) -> list[str]:
    """``podman --runtime runc ARGS``."""
    return ["podman", "--runtime", RUNTIME, *args]


def podman(
    *args: str, check: bool = True, capture: bool = False, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run podman with this repository's containers.conf; ``capture`` returns its stdout."""
    return subprocess.run(
        podman_command(*args),
        env=containers_env(),
        check=check,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE if capture else None,
    )


def image_label(tag: str, label: str) -> str | None:
    """A label of a local image; None when there is no such image."""
    done = subprocess.run(
        podman_command("image", "inspect", "--format", f'{{{{ index .Labels "{label}" }}}}', tag),
        env=containers_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def image_size(tag: str) -> int:
    """A local image's size in bytes, as ``podman images`` reports it."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag, capture=True).stdout)


# --------------------------------------------------------------------------- base image


def recipe_hash() -> str:
    """Hash of everything that shapes the stand-in base: a change rebuilds it."""
    recipe = {
        "debootstrap": DEBOOTSTRAP_ARGS,
        "mirror": MIRROR,
        "changes": IMAGE_CHANGES,
        "sources": DEBIAN_SOURCES,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def as_root() -> list[str]:
    """The prefix that runs a command as root: none, or passwordless sudo."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], check=False).returncode == 0:
        return ["sudo", "-n"]
    raise SystemExit("debootstrap needs root or passwordless sudo")


def import_command(tag: str, recipe: str) -> list[str]:
    """``podman import`` of a root filesystem tarball from stdin, with the image config."""
    changes = [*IMAGE_CHANGES, f"LABEL {RECIPE_LABEL}={recipe}"]
    return podman_command("import", *(f"--change={c}" for c in changes), "-", tag)


def ensure_base_image(tag: str = BASE_TAG, *, force: bool = False) -> str:
    """Bootstrap Debian bookworm with Python 3.11 as ``tag`` unless it is current; its tag."""
    recipe = recipe_hash()
    if not force and image_label(tag, RECIPE_LABEL) == recipe:
        return tag
    for tool in ("debootstrap", "podman", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: make containers")
    root = as_root()
    started = time.monotonic()
    # /var/tmp, not /tmp: a tmpfs /tmp may be too small or nodev for a 300 MB root filesystem.
    scratch_dir = "/var/tmp"  # nosec B108 # a private TemporaryDirectory (mode 0700) inside it
    with tempfile.TemporaryDirectory(prefix="fraud-base-", dir=scratch_dir) as scratch:
        rootfs = Path(scratch) / "rootfs"
        try:
            subprocess.run(
                [*root, "debootstrap", *DEBOOTSTRAP_ARGS, str(rootfs), MIRROR], check=True
            )
            configure = (
                f"rm -f {rootfs}/etc/apt/sources.list"
                f" && cat > {rootfs}/etc/apt/sources.list.d/debian.sources"
                f" && rm -rf {rootfs}/var/lib/apt/lists/* {rootfs}/var/cache/apt/*.bin"
                f" {rootfs}/var/cache/apt/archives/*.deb"
            )
            subprocess.run(
                [*root, "sh", "-c", configure], input=DEBIAN_SOURCES, text=True, check=True
            )
            tar = subprocess.Popen(
                [*root, "tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
            )
            subprocess.run(
                import_command(tag, recipe), stdin=tar.stdout, env=containers_env(), check=True
            )
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise subprocess.CalledProcessError(tar.returncode, "tar")
        finally:
            subprocess.run([*root, "rm", "-rf", str(rootfs)], check=False)
    report(
        "base", image=tag, seconds=round(time.monotonic() - started, 1), size_bytes=image_size(tag)
    )
    return tag


# --------------------------------------------------------------------------- host mounts


def pip_config_files(env: Mapping[str, str], home: Path, etc: Path = Path("/etc")) -> list[Path]:
    """Where pip looks for configuration (existing or not), as pip's docs list them."""
    xdg_dirs = env.get("XDG_CONFIG_DIRS") or str(etc / "xdg")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(":") if d]
    files.append(etc / "pip.conf")
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def pip_referenced_paths(config: Path) -> list[Path]:
    """The files a pip configuration file names: CA bundle, client certificate, constraints.

    Local indexes and find-links directories are not followed: a build must resolve from
    the indexes it can reach (pip skips a missing local path with a warning).
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config)
    except configparser.Error:
        return []
    return [
        Path(value.strip())
        for section in parser.sections()
        for key, value in parser.items(section)
        if key in PIP_FILE_KEYS
    ]


def apt_network_files(etc: Path = Path("/etc")) -> list[Path]:
    """apt configuration that sets a proxy or a CA, and the files it names."""
    candidates = [etc / "apt" / "apt.conf", *sorted((etc / "apt" / "apt.conf.d").glob("*"))]
    paths: list[Path] = []
    for candidate in candidates:
        if not candidate.is_file():
            continue
        text = candidate.read_text(errors="replace")
        if APT_NETWORK.search(text):
            paths.append(candidate)
            paths += [Path(p) for p in APT_FILE.findall(text)]
    return paths


def host_mounts(
    env: Mapping[str, str] | None = None, home: Path | None = None, etc: Path = Path("/etc")
) -> list[Path]:
    """Existing host files that make pip and apt work behind this host's proxy, deduplicated."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    configs = [p for p in pip_config_files(env, home, etc) if p.is_file()]
    wanted: list[Path] = list(configs)
    for config in configs:
        wanted += pip_referenced_paths(config)
    wanted += [Path(env[v]) for v in CA_BUNDLE_VARS if env.get(v)]
    wanted.append(etc / "ssl" / "certs" / "ca-certificates.crt")
    wanted += apt_network_files(etc)
    seen: dict[str, Path] = {}
    for path in wanted:
        if path.is_absolute() and path.exists() and str(path) not in seen:
            seen[str(path)] = path
    return list(seen.values())


# --------------------------------------------------------------------------- builds


def ignore_file(dockerfile: Path, context: Path) -> Path | None:
    """``<Dockerfile>.dockerignore`` beside the Dockerfile (BuildKit's rule), if there is one."""
    specific = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if specific.is_file():
        return specific
    default = context / ".dockerignore"
    return default if default.is_file() else None


def build_command(
    dockerfile: Path,
    context: Path,
    tag: str,
    base: str,
    mounts: Iterable[Path] = (),
    build_args: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``podman build`` command line: chroot isolation, host network, Docker format."""
    command = podman_command(
        "build",
        "--isolation=chroot",
        "--network=host",
        "--format=docker",  # keeps HEALTHCHECK, which the OCI format drops
        f"--build-arg=BASE_IMAGE={base}",
    )
    command += [f"--build-arg={k}={v}" for k, v in (build_args or {}).items()]
    command += [f"--volume={p}:{p}:ro" for p in mounts]
    ignore = ignore_file(dockerfile, context)
    if ignore is not None:
        command.append(f"--ignorefile={ignore}")
    return [*command, f"--file={dockerfile}", f"--tag={tag}", str(context)]


def build(
    dockerfile: Path | str,
    context: Path | str = ROOT,
    tag: str = SERVING_TAG,
    base: str = BASE_TAG,
    build_args: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build ``dockerfile`` in ``context`` as ``tag`` on ``base``; print and return the timing."""
    dockerfile, context = Path(dockerfile).resolve(), Path(context).resolve()
    command = build_command(dockerfile, context, tag, base, host_mounts(), build_args)
    started = time.monotonic()
    subprocess.run(command, env=containers_env(), check=True)
    result = BuildResult(
        tag, dockerfile.name, round(time.monotonic() - started, 1), image_size(tag)
    )
    report("build", **asdict(result))
    return result


def report(event: str, **fields: object) -> None:
    """One JSON line on stdout."""
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build the images (both by default)")
    build_parser.add_argument("--serving", action="store_true", help="the serving image")
    build_parser.add_argument("--training", action="store_true", help="the training image")
    build_parser.add_argument(
        "--context", type=Path, default=ROOT, help="build context (after `make train`)"
    )
    build_parser.add_argument("--tag-serving", default=SERVING_TAG)
    build_parser.add_argument("--tag-training", default=TRAINING_TAG)
    build_parser.add_argument(
        "--base", default=None, help=f"base image (default: bootstrap {BASE_TAG})"
    )
    args = parser.parse_args(argv)
    both = not (args.serving or args.training)
    base = args.base or ensure_base_image()
    if args.serving or both:
        build(ROOT / "Dockerfile", args.context, args.tag_serving, base)
    if args.training or both:
        build(ROOT / "Dockerfile.train", args.context, args.tag_training, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
