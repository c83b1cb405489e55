"""Rendering deploy/k8s as `kubectl kustomize` does, for the Kubernetes tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

K8S = "deploy/k8s"


def render_in_python(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize` makes of these kustomizations, for a machine without kubectl:
    the resources in order (files, or directories with their own kustomization.yaml), and
    configMapGenerator's files (no name suffix: disableNameSuffixHash)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(kustomization) <= {
        "apiVersion",
        "kind",
        "resources",
        "configMapGenerator",
        "generatorOptions",
    }, f"{directory}: render_in_python knows no {sorted(set(kustomization) - {'resources'})}"
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render_in_python(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for generator in kustomization.get("configMapGenerator", []):
        assert kustomization.get("generatorOptions", {}).get("disableNameSuffixHash") is True
        data = {Path(f).name: (directory / f).read_text(encoding="utf-8") for f in generator["files"]}
        labels = generator.get("options", {}).get("labels", {})
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"], "labels": labels},
                "data": data,
            }
        )
    return objects


def render(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` where kubectl is installed, else its Python equivalent above."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render_in_python(directory)
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


def kind_and_name(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]
