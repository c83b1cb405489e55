"""Rendering deploy/k8s as `kubectl kustomize` does, for the Kubernetes tests."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

K8S = "deploy/k8s"
KNOWN = {"apiVersion", "kind", "resources", "components", "configMapGenerator", "generatorOptions", "images"}


def render_in_python(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize` makes of these kustomizations, for a machine without kubectl
    (CI has none), as far as they use kustomize:

    - ``resources``: files, or directories with their own kustomization.yaml, in order;
    - ``configMapGenerator`` from ``envs`` (KEY=VALUE lines, taken literally as kustomize
      takes them), ``literals`` or ``files``, with ``options.labels``; the name gets
      kustomize's content-hash suffix (``name-<10 characters>``) unless
      ``disableNameSuffixHash``, and every reference to the generator's name is rewritten
      (envFrom configMapRef, env valueFrom configMapKeyRef, configMap and projected volumes);
    - ``images`` (``newName``, ``newTag``, ``digest``) of the kustomization and of its
      ``components``, on every container and initContainer.

    The suffix is computed as kustomize v5's hasher does (sha256 of the JSON of kind, data
    and, as kustomize reads it, an empty name; first 10 hex digits with 0,1,3,a,e replaced),
    and tests/deploy/test_k8s.py compares it with kubectl's where kubectl is installed; it is
    an approximation all the same: what the tests rely on is that a change of content
    changes the name and that every reference follows."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - KNOWN
    assert not unknown, f"{directory}: render_in_python knows no {sorted(unknown)}"
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render_in_python(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    renamed: dict[str, str] = {}
    for generator in kustomization.get("configMapGenerator", []):
        config_map = generated_config_map(directory, generator, kustomization.get("generatorOptions", {}))
        renamed[generator["name"]] = config_map["metadata"]["name"]
        objects.append(config_map)
    for obj in objects:
        rewrite_config_map_references(obj, renamed)
    images = list(kustomization.get("images", []))
    for component in kustomization.get("components", []):
        images += component_images(directory / component)
    for image in images:
        for obj in objects:
            set_image(obj, image)
    return objects


def generated_config_map(
    directory: Path, generator: dict[str, Any], global_options: dict[str, Any]
) -> dict[str, Any]:
    data: dict[str, str] = {}
    for env_file in generator.get("envs", []):
        data.update(env_file_pairs(directory / env_file))
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    for entry in generator.get("files", []):
        key, _, file = entry.rpartition("=")
        data[key or Path(file).name] = (directory / file).read_text(encoding="utf-8")
    options = {**global_options, **generator.get("options", {})}
    name = generator["name"]
    if not options.get("disableNameSuffixHash"):
        name = f"{name}-{kustomize_hash(data)}"
    metadata: dict[str, Any] = {"name": name}
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    if options.get("annotations"):
        metadata["annotations"] = dict(options["annotations"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def env_file_pairs(path: Path) -> dict[str, str]:
    """An env file as kustomize reads it: leading blanks dropped, blank and # lines skipped,
    the value everything after the first '=' (no quotes removed, no trailing comment)."""
    pairs: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key), f"{path.name}:{number}: {raw!r}"
        pairs[key] = value
    return pairs


def kustomize_hash(data: dict[str, str]) -> str:
    """kustomize's name suffix of a ConfigMap with ``data`` (api/hasher: Go's json.Marshal,
    keys sorted, <, > and & escaped)."""
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def rewrite_config_map_references(node: Any, renamed: dict[str, str]) -> None:
    """Every place a pod names a ConfigMap, as kustomize's name-reference transformer finds it."""
    if not renamed:
        return
    if isinstance(node, dict):
        for key in ("configMapRef", "configMapKeyRef", "configMap"):
            ref = node.get(key)
            if isinstance(ref, dict) and ref.get("name") in renamed:
                ref["name"] = renamed[ref["name"]]
        for value in node.values():
            rewrite_config_map_references(value, renamed)
    elif isinstance(node, list):
        for item in node:
            rewrite_config_map_references(item, renamed)


def component_images(directory: Path) -> list[dict[str, Any]]:
    component = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    assert component["kind"] == "Component", directory
    unknown = set(component) - {"apiVersion", "kind", "images"}
    assert not unknown, f"{directory}: render_in_python knows no {sorted(unknown)} in a component"
    return list(component.get("images", []))


def split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference (a registry's port is part of the name)."""
    name, _, digest = image.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def set_image(node: Any, image: dict[str, Any]) -> None:
    """kustomize's image transformer: every container and initContainer whose image is
    ``image["name"]`` (any tag or digest) gets the new name, tag or digest."""
    if isinstance(node, dict):
        for key in ("containers", "initContainers"):
            for container in node.get(key) or []:
                name, tag, digest = split_image(container.get("image", ""))
                if name != image["name"]:
                    continue
                name = image.get("newName", name)
                if "digest" in image:
                    container["image"] = f"{name}@{image['digest']}"
                elif "newTag" in image:
                    container["image"] = f"{name}:{image['newTag']}"
                else:
                    container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        for value in node.values():
            set_image(value, image)
    elif isinstance(node, list):
        for item in node:
            set_image(item, image)


def render(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` where kubectl is installed, else its Python equivalent above."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render_in_python(directory)
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


def with_config_env(k8s: Path, tmp: Path, changes: dict[str, str]) -> Path:
    """A copy of deploy/k8s and what it names outside (../monitoring) under ``tmp``, its
    config.env with ``changes`` applied: to render what a changed setting makes."""
    copy_root = tmp / "deploy"
    shutil.copytree(k8s.parent, copy_root, dirs_exist_ok=True)
    env = copy_root / k8s.name / "config.env"
    lines = env.read_text(encoding="utf-8").splitlines()
    for key, value in changes.items():
        hits = [i for i, line in enumerate(lines) if line.startswith(f"{key}=")]
        assert len(hits) == 1, f"config.env sets {key} {len(hits)} times"
        lines[hits[0]] = f"{key}={value}"
    env.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return copy_root / k8s.name


def generated(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` a generator called ``name`` made: ``name-<hash>`` (or
    ``name`` where the suffix is disabled)."""
    (found,) = [
        o
        for o in objects
        if o["kind"] == kind and re.fullmatch(rf"{re.escape(name)}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    return found


def kind_and_name(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]
