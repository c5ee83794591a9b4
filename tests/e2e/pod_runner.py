"""Run rendered Kubernetes workloads with Podman, every setting taken from the manifests.

``podman kube play`` (4.3) mishandles init containers (it restarts them forever), so this
small runner translates a rendered pod template itself: image, command and args (with
``$(VAR)`` expansion), ``env`` and ``envFrom`` from the rendered ConfigMaps and the given
Secrets, working directory, the pod's and containers' security contexts (user, group,
``fsGroup``, ``readOnlyRootFilesystem``, dropped capabilities, no privilege escalation),
CPU and memory limits, volumes (``emptyDir``, ``secret``, ``configMap``; a CSI volume
only through an explicit host directory, as the bucket stands in for it), init containers
run to completion first, ``containerPort`` forwarded to loopback, and the kubelet's part:
startup, readiness and liveness probes, restarts, ``preStop`` and the termination grace
period. Nothing is configured twice: what the manifests do not say, the runner does not
invent.

Not reproduced here: Services, NetworkPolicies, the HPA and PDB, resource requests (only
limits), ``emptyDir`` size limits and ``medium: Memory`` (a host directory instead).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Podman = Callable[..., subprocess.CompletedProcess[str]]
VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def render(overlay: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize OVERLAY`` as a list of objects."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: Iterable[Mapping[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The rendered object of ``kind`` named ``name``."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return dict(obj)
    raise KeyError(f"no {kind}/{name} in the rendering")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, others kept."""
    return VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


@dataclass
class Probe:
    """An ``httpGet`` probe, its port resolved to the forwarded host port."""

    path: str
    host_port: int
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int = 1

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None, ports: Mapping[str | int, int]) -> Probe | None:
        if not spec:
            return None
        http = spec["httpGet"]
        return cls(
            path=http["path"],
            host_port=ports[http["port"]],
            period=float(spec.get("periodSeconds", 10)),
            timeout=float(spec.get("timeoutSeconds", 1)),
            failure_threshold=int(spec.get("failureThreshold", 3)),
            success_threshold=int(spec.get("successThreshold", 1)),
        )

    def check(self) -> bool:
        url = f"http://127.0.0.1:{self.host_port}{self.path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as answer:  # nosec B310
                return 200 <= answer.status < 400
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False


@dataclass
class Container:
    """One container of the pod, as ``podman run`` arguments."""

    name: str
    spec: dict[str, Any]
    run_args: list[str]
    startup: Probe | None = None
    readiness: Probe | None = None
    liveness: Probe | None = None
    restarts: int = 0
    ready: bool = False
    started: bool = False


@dataclass
class Pod:
    """A pod template run with Podman: ``start()``, then the kubelet loop in a thread."""

    name: str
    template: dict[str, Any]
    objects: list[dict[str, Any]]
    secrets: Mapping[str, Mapping[str, str]]
    root: Path
    podman: Podman
    images: Mapping[str, str] = field(default_factory=dict)
    csi: Mapping[str, Path] = field(default_factory=dict)
    host_ports: Mapping[int, int] = field(default_factory=dict)  # containerPort -> host
    host_alias: str = "10.0.2.2"
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spec: dict[str, Any] = self.template["spec"]
        self.pod_security: dict[str, Any] = self.spec.get("securityContext", {})
        self.volumes = self._volumes()
        self.init = [self._container(c) for c in self.spec.get("initContainers", [])]
        self.containers = [self._container(c) for c in self.spec["containers"]]
        self._stop = threading.Event()
        self._kubelet: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- translation -------------------------------------------------------------------
    def _log(self, message: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {message}")

    def _config_map(self, name: str) -> dict[str, str]:
        return dict(find(self.objects, "ConfigMap", name).get("data", {}))

    def _secret(self, name: str) -> Mapping[str, str]:
        if name not in self.secrets:
            raise KeyError(f"Secret {name} is referenced by the pod and was not given")
        return self.secrets[name]

    def _volumes(self) -> dict[str, Path]:
        """A host directory per pod volume, owned as the kubelet would (fsGroup)."""
        group = self.pod_security.get("fsGroup")
        user = self.pod_security.get("runAsUser", 0)
        paths: dict[str, Path] = {}
        for volume in self.spec.get("volumes", []):
            name = volume["name"]
            path = self.root / "volumes" / name
            if "csi" in volume:
                if name not in self.csi:
                    raise KeyError(f"CSI volume {name} needs a host directory (csi=...)")
                paths[name] = self.csi[name]
                continue
            path.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                shutil.chown(path, user, group)
                path.chmod(0o2775 if group is not None else 0o777)
            elif "secret" in volume or "configMap" in volume:
                source = volume.get("secret") or volume["configMap"]
                if "secret" in volume:
                    data = self._secret(source["secretName"])
                else:
                    data = self._config_map(source["name"])
                items = source.get("items") or [{"key": k, "path": k} for k in data]
                mode = int(source.get("defaultMode", 0o644))
                for item in items:
                    if item["key"] not in data:
                        raise KeyError(f"volume {name}: key {item['key']} is not in its source")
                    target = path / item["path"]
                    target.write_text(data[item["key"]])
                    shutil.chown(target, 0, group if group is not None else 0)
                    target.chmod(int(item.get("mode", mode)))
            else:
                raise ValueError(f"volume {name}: only emptyDir, secret, configMap and csi")
            paths[name] = path
        return paths

    def _environment(self, spec: Mapping[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {"HOSTNAME": self.name}
        for source in spec.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self._config_map(source["configMapRef"]["name"]))
            if "secretRef" in source:
                env.update(self._secret(source["secretRef"]["name"]))
        for item in spec.get("env", []):
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
                continue
            ref = item["valueFrom"]
            if "configMapKeyRef" in ref:
                key = ref["configMapKeyRef"]
                env[item["name"]] = self._config_map(key["name"])[key["key"]]
            elif "secretKeyRef" in ref:
                key = ref["secretKeyRef"]
                env[item["name"]] = self._secret(key["name"])[key["key"]]
            else:
                raise ValueError(f"env {item['name']}: unsupported valueFrom {sorted(ref)}")
        return env

    def _container(self, spec: dict[str, Any]) -> Container:
        name = spec["name"]
        security = {**self.pod_security, **spec.get("securityContext", {})}
        args = ["--pod", self.name, "--name", f"{self.name}-{name}", "--init=false"]
        if "runAsUser" in security:
            args += ["--user", f"{security['runAsUser']}:{security.get('runAsGroup', 0)}"]
        if "fsGroup" in self.pod_security:
            args += ["--group-add", str(self.pod_security["fsGroup"])]
        if security.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        capabilities = security.get("capabilities", {})
        args += [f"--cap-drop={c.lower()}" for c in capabilities.get("drop", [])]
        args += [f"--cap-add={c.lower()}" for c in capabilities.get("add", [])]
        limits = spec.get("resources", {}).get("limits", {})
        if "cpu" in limits:
            args += ["--cpus", str(cpu_cores(str(limits["cpu"])))]
        if "memory" in limits:
            args += ["--memory", str(memory_bytes(str(limits["memory"])))]
        env = self._environment(spec)
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        if "workingDir" in spec:
            args += ["--workdir", spec["workingDir"]]
        for mount in spec.get("volumeMounts", []):
            host = self.volumes[mount["name"]]
            if "subPath" in mount:
                host = host / mount["subPath"]
            suffix = ":ro" if mount.get("readOnly") else ""
            args += ["--volume", f"{host}:{mount['mountPath']}{suffix}"]
        image = self.images.get(spec["image"], spec["image"])
        command = [expand(str(a), env) for a in spec.get("command", [])]
        command_args = [expand(str(a), env) for a in spec.get("args", [])]
        if command:
            args += ["--entrypoint", json.dumps(command)]
        args += [image, *command_args]
        ports: dict[str | int, int] = {}
        for port in spec.get("ports", []):
            host = self.host_ports.get(port["containerPort"], port["containerPort"])
            ports[port["containerPort"]] = host
            if "name" in port:
                ports[port["name"]] = host
        return Container(
            name,
            spec,
            args,
            startup=Probe.of(spec.get("startupProbe"), ports),
            readiness=Probe.of(spec.get("readinessProbe"), ports),
            liveness=Probe.of(spec.get("livenessProbe"), ports),
        )

    # -- running -----------------------------------------------------------------------
    def create(self) -> None:
        """The pod's shared network namespace, with its container ports on loopback."""
        publish = []
        for container in self.spec["containers"]:
            for port in container.get("ports", []):
                host = self.host_ports.get(port["containerPort"], port["containerPort"])
                publish += ["--publish", f"127.0.0.1:{host}:{port['containerPort']}"]
        self.podman(
            "pod",
            "create",
            "--name",
            self.name,
            "--network",
            "slirp4netns:allow_host_loopback=true",
            *publish,
        )

    def run_to_completion(self, container: Container, timeout: float) -> str:
        """Run one container in the foreground (an init container, a job); its log."""
        done = self.podman("run", "--rm", *container.run_args, check=False, timeout=timeout)
        output = done.stdout + done.stderr
        self._log(f"{container.name} exited {done.returncode}")
        if done.returncode != 0:
            raise RuntimeError(f"container {container.name} failed ({done.returncode}):\n{output}")
        return output

    def run_job(self, timeout: float = 600.0) -> str:
        """A Job's pod: init containers, then each container to completion; their logs."""
        self.create()
        logs = [self.run_to_completion(c, timeout) for c in (*self.init, *self.containers)]
        return "\n".join(logs)

    def start(self) -> None:
        """Init containers in order, then the containers, then the kubelet loop."""
        self.create()
        for container in self.init:
            self.run_to_completion(container, timeout=300)
        for container in self.containers:
            self.podman("run", "--detach", *container.run_args)
            container.started = True
            self._log(f"{container.name} started")
        self._kubelet = threading.Thread(target=self._kubelet_loop, daemon=True)
        self._kubelet.start()

    def _running(self, container: Container) -> bool:
        done = self.podman(
            "inspect",
            "--format",
            "{{.State.Running}}",
            f"{self.name}-{container.name}",
            check=False,
        )
        return done.stdout.strip() == "true"

    def _restart(self, container: Container, why: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            container.ready = False
            container.restarts += 1
            self._log(f"{container.name} restarted ({why})")
            grace = int(self.spec.get("terminationGracePeriodSeconds", 30))
            self.podman("stop", "--time", str(grace), f"{self.name}-{container.name}", check=False)
            self.podman("start", f"{self.name}-{container.name}")

    def _kubelet_loop(self) -> None:
        """Each probe on its own period, as the kubelet runs them; restart on exit, on a
        startup probe out of attempts, or on a failed liveness probe."""
        container = self.containers[0]  # the pods run here have one long-running container
        while not self._stop.is_set():
            why = self._supervise(container)
            if why is not None:
                self._restart(container, why)

    def _supervise(self, container: Container) -> str | None:
        """Probe one run of the container until it must be restarted (the reason) or the
        pod stops (None)."""
        failures = {"startup": 0, "readiness": 0, "liveness": 0}
        started = container.startup is None
        due = dict.fromkeys(failures, time.monotonic())
        successes = 0
        while not self._stop.wait(0.25):
            if not self._running(container):
                return "exited"
            now = time.monotonic()
            if not started:
                probe = container.startup
                assert probe is not None
                if now < due["startup"]:
                    continue
                due["startup"] = now + probe.period
                if probe.check():
                    started = True
                    self._log(f"{container.name} started (startup probe)")
                    due["readiness"] = due["liveness"] = now
                else:
                    failures["startup"] += 1
                    if failures["startup"] >= probe.failure_threshold:
                        return "startup probe failed"
                continue
            ready = container.readiness
            if ready is not None and now >= due["readiness"]:
                due["readiness"] = now + ready.period
                if ready.check():
                    successes, failures["readiness"] = successes + 1, 0
                    if successes >= ready.success_threshold and not container.ready:
                        container.ready = True
                        self._log(f"{container.name} ready")
                else:
                    successes, failures["readiness"] = 0, failures["readiness"] + 1
                    if failures["readiness"] >= ready.failure_threshold and container.ready:
                        container.ready = False
                        self._log(f"{container.name} not ready")
            live = container.liveness
            if live is not None and now >= due["liveness"]:
                due["liveness"] = now + live.period
                failures["liveness"] = 0 if live.check() else failures["liveness"] + 1
                if failures["liveness"] >= live.failure_threshold:
                    return "liveness probe failed"
        return None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.ready for c in self.containers if c.readiness is not None):
                return
            time.sleep(0.2)
        raise TimeoutError(
            f"pod {self.name} not ready in {timeout} s: {self.events}\n{self.logs()}"
        )

    def kill(self, container: str) -> None:
        """A crash: SIGKILL one container; the kubelet loop restarts it."""
        self.podman("kill", "--signal", "KILL", f"{self.name}-{container}")
        self._log(f"{container} killed")

    def terminate(self, before_sigterm: Callable[[], None] | None = None) -> float:
        """Delete the pod as the kubelet does: not ready, ``preStop``, SIGTERM, and SIGKILL
        when the grace period is over; ``before_sigterm`` runs between the hook and the
        signal (the endpoints are gone by then). Returns the seconds it took."""
        began = time.monotonic()
        self._stop.set()
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        for container in self.containers:
            container.ready = False
            hook = container.spec.get("lifecycle", {}).get("preStop", {})
            if "sleep" in hook:
                time.sleep(float(hook["sleep"]["seconds"]))
            elif "exec" in hook:
                self.podman("exec", f"{self.name}-{container.name}", *hook["exec"]["command"])
        if before_sigterm is not None:
            before_sigterm()
        remaining = max(1, int(grace - (time.monotonic() - began)))
        for container in self.containers:
            self.podman(
                "stop", "--time", str(remaining), f"{self.name}-{container.name}", check=False
            )
        self._log("terminated")
        return time.monotonic() - began

    def exit_code(self, container: str) -> int:
        done = self.podman("inspect", "--format", "{{.State.ExitCode}}", f"{self.name}-{container}")
        return int(done.stdout.strip())

    def rss_mb(self, container: str) -> float:
        """Resident memory of the container's main process (MiB), from the host's /proc."""
        pid = self.podman("inspect", "--format", "{{.State.Pid}}", f"{self.name}-{container}")
        for line in Path(f"/proc/{pid.stdout.strip()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for {container}")

    def logs(self, container: str | None = None) -> str:
        names = [container] if container else [c.name for c in self.containers]
        out = []
        for name in names:
            done = self.podman("logs", f"{self.name}-{name}", check=False)
            out.append(done.stdout + done.stderr)
        return "\n".join(out)

    def remove(self) -> None:
        self._stop.set()
        if self._kubelet is not None:
            self._kubelet.join(timeout=30)
        self.podman("pod", "rm", "--force", "--time", "0", self.name, check=False)
        shutil.rmtree(self.root / "volumes", ignore_errors=True)


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity (``"1"``, ``"500m"``) in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``768Mi``, ``2Gi``, ``1G``) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def deployment_pod(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The pod template of a rendered Deployment."""
    return dict(find(objects, "Deployment", name)["spec"]["template"])


def cronjob_pod(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The pod template of a rendered CronJob's job."""
    return dict(find(objects, "CronJob", name)["spec"]["jobTemplate"]["spec"]["template"])
