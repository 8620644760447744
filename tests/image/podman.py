"""Debian's podman with a private storage root, and packaging/daemonset.yaml played as the kubelet
would run it: each container's image, command, args, securityContext and mounts come from the
manifest; each hostPath stands in a temp dir and each configMap is written from the manifest's
ConfigMap."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.simnode.builds import BUILD_DIR, REPO

MANIFEST = REPO / "packaging" / "daemonset.yaml"


def containers_conf(home: Path) -> str:
    """This machine's rlimits and cgroup layout need runc, cgroupfs and explicit ulimits (runc may not
    set podman's defaults here); locks and run-time files stay under home, apart from any other
    podman on the machine."""
    ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
    return (
        "[containers]\n"
        f"default_ulimits = {json.dumps(ulimits)}\n"
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'runtime = "runc"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{home}/events.log"\n'
        'lock_type = "file"\n'
        f'tmp_dir = "{home}/tmp"\n'
        f'static_dir = "{home}/root/libpod"\n'
        f'volume_path = "{home}/root/volumes"\n'
    )


class Podman:
    """podman on a storage root of its own (kept in the build directory: base images and layers
    are made once), never the machine's."""

    def __init__(self, home: Path = BUILD_DIR / "podman") -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.conf = home / "containers.conf"
        self.conf.write_text(containers_conf(home))
        self.argv = ["podman", "--root", str(home / "root"), "--runroot", str(home / "run")]

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf), "PODMAN": " ".join(self.argv)}

    def __call__(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*self.argv, *args], env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def build(self, tag: str, context: Path = REPO) -> None:
        """packaging/build-image.sh: local base images, --pull=never."""
        subprocess.run(
            ["bash", str(context / "packaging" / "build-image.sh"), tag],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=1800,
        )


@dataclass
class Manifest:
    config_map: dict
    pod: dict  # the DaemonSet's pod template spec

    @classmethod
    def load(cls, path: Path = MANIFEST) -> Manifest:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        config_map = next(doc for doc in docs if doc["kind"] == "ConfigMap")
        daemonset = next(doc for doc in docs if doc["kind"] == "DaemonSet")
        return cls(config_map, daemonset["spec"]["template"]["spec"])

    def container(self, name: str) -> dict:
        containers = self.pod.get("initContainers", []) + self.pod["containers"]
        return next(c for c in containers if c["name"] == name)

    def host_paths(self) -> list[str]:
        return [v["hostPath"]["path"] for v in self.pod["volumes"] if "hostPath" in v]


class Kubelet:
    """Runs the manifest's containers from a given image with podman, host paths under root."""

    def __init__(self, podman: Podman, manifest: Manifest, root: Path) -> None:
        self.podman = podman
        self.manifest = manifest
        self.root = root
        for volume in manifest.pod["volumes"]:
            self.volume_dir(volume["name"]).mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                assert volume["configMap"]["name"] == manifest.config_map["metadata"]["name"]
                for key, text in manifest.config_map["data"].items():
                    (self.volume_dir(volume["name"]) / key).write_text(text)

    def host_path(self, path: str) -> Path:
        """Where the node's path stands in this test."""
        return self.root / "host" / path.strip("/").replace("/", "_")

    def volume_dir(self, name: str) -> Path:
        volume = next(v for v in self.manifest.pod["volumes"] if v["name"] == name)
        if "hostPath" in volume:
            return self.host_path(volume["hostPath"]["path"])
        return self.root / "configmaps" / name

    def run_args(self, container: dict, image: str) -> list[str]:
        """podman run's options and command for one of the manifest's containers."""
        security = container.get("securityContext", {})
        options = ["--pull=never", "--network=none"]
        if self.manifest.pod.get("hostPID"):
            options.append("--pid=host")
        if security.get("privileged"):
            options.append("--privileged")
        if security.get("readOnlyRootFilesystem"):
            options.append("--read-only")
        if security.get("allowPrivilegeEscalation") is False:
            options += ["--security-opt", "no-new-privileges"]
        for cap in security.get("capabilities", {}).get("drop", []):
            options.append(f"--cap-drop={cap.lower()}")
        if "runAsUser" in security:
            options.append(f"--user={security['runAsUser']}")
        for mount in container.get("volumeMounts", []):
            mode = ":ro" if mount.get("readOnly") else ""
            options.append(f"--volume={self.volume_dir(mount['name'])}:{mount['mountPath']}{mode}")
        command = container.get("command")
        if command:
            options += [f"--entrypoint={command[0]}", image, *command[1:]]
        else:
            options.append(image)
        return options + list(container.get("args", []))

    def run(self, name: str, image: str, extra_args: list[str] | None = None) -> subprocess.CompletedProcess:
        """Run a container to its end (an init container)."""
        args = self.run_args(self.manifest.container(name), image) + list(extra_args or [])
        return self.podman("run", "--rm", *args, check=False)

    def start(self, name: str, image: str, container_name: str, extra_args: list[str] | None = None) -> None:
        """Start a long-running container (the executor)."""
        args = self.run_args(self.manifest.container(name), image) + list(extra_args or [])
        self.podman("run", "--detach", f"--name={container_name}", *args)

    def probe(self, name: str, container_name: str) -> subprocess.CompletedProcess:
        """The container's liveness probe, exec'd in it as the kubelet does."""
        command = self.manifest.container(name)["livenessProbe"]["exec"]["command"]
        return self.podman("exec", container_name, *command, check=False)
