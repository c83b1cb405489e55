"""Images are tagged by the release version, and the version has one source: the root
pyproject.toml's ``version``. deploy/k8s/release (a kustomize component every kustomization
includes) tags every voucher image with it, docker-compose.yml defaults VOUCHER_VERSION to it
and `make images` builds with it. No image is ``latest`` or untagged: the clusters pull
IfNotPresent, and a tag that moves would never be pulled again on a node that has it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .k8s_render import K8S, kind_and_name, render, render_in_python

KUSTOMIZATIONS = (K8S, f"{K8S}/migrations", "deploy/monitoring")
DIGEST = re.compile(r"[^@:]+(:[^@/]+)?@sha256:[0-9a-f]{64}")
RENDERERS = {"render": render, "render_in_python": render_in_python}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container and initContainer of a Deployment, Job, CronJob (or any pod template)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                found.extend(node.get(key) or [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(obj.get("spec", {}))
    return found


def tag_of(image: str) -> str:
    """The tag of an image reference ("" for none; a registry's port is no tag)."""
    last = image.partition("@")[0].rsplit("/", 1)[-1]
    return last.rpartition(":")[2] if ":" in last else ""


def check_images(objects: list[dict[str, Any]], version: str) -> None:
    """Every voucher image at ``version`` (or pinned by digest), every other one at a version
    of its own; IfNotPresent only for such fixed references."""
    for obj in objects:
        for container in containers(obj):
            image, where = container["image"], f"{kind_and_name(obj)}/{container['name']}"
            tag = tag_of(image)
            pinned = bool(DIGEST.fullmatch(image))
            if image.rsplit("/", 1)[-1].startswith("voucher-"):
                assert pinned or image.endswith(f":{version}"), (
                    f"{where}: {image}, not :{version} or a digest"
                )
            assert pinned or (tag and tag != "latest"), f"{where}: {image} has no version"
            if container.get("imagePullPolicy") == "IfNotPresent":
                assert pinned or (tag and tag != "latest"), f"{where}: IfNotPresent on a tag that moves"


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_every_rendered_image_is_the_release_version(
    root: Path, version: str, directory: str, renderer: str
) -> None:
    objects = RENDERERS[renderer](root / directory)
    assert any(c["image"].startswith("voucher-") for o in objects for c in containers(o)), directory
    check_images(objects, version)


@pytest.mark.parametrize(
    "image", ["voucher-orders", "voucher-orders:latest", "voucher-orders:0.0.9", "prom/pushgateway"]
)
def test_an_untagged_latest_or_other_version_is_caught(root: Path, version: str, image: str) -> None:
    """The check above is not vacuous."""
    objects = render_in_python(root / K8S)
    (container,) = containers(next(o for o in objects if kind_and_name(o) == ("Deployment", "orders")))
    container["image"] = image
    with pytest.raises(AssertionError):
        check_images(objects, version)


def test_the_release_component_tags_every_voucher_image_with_the_version(root: Path, version: str) -> None:
    component = yaml.safe_load((root / K8S / "release/kustomization.yaml").read_text(encoding="utf-8"))
    tags = {i["name"]: i["newTag"] for i in component["images"]}
    assert set(tags.values()) == {version}, f"deploy/k8s/release: {tags}, pyproject.toml: {version}"
    used = set()
    for directory in KUSTOMIZATIONS:
        kustomization = yaml.safe_load((root / directory / "kustomization.yaml").read_text(encoding="utf-8"))
        components = {(root / directory / c).resolve() for c in kustomization.get("components", [])}
        assert (root / K8S / "release").resolve() in components, f"{directory} leaves out deploy/k8s/release"
        for resource in kustomization["resources"]:
            path = root / directory / resource
            if path.is_file():
                used |= set(re.findall(r"image: (voucher-[a-z]+)\s", path.read_text(encoding="utf-8")))
    assert used == tags.keys(), "deploy/k8s/release: one entry per voucher image the manifests use"


def test_compose_runs_each_image_at_the_version_or_voucher_version(compose_text: str, version: str) -> None:
    """`docker compose up` runs the release of pyproject.toml unless VOUCHER_VERSION says
    another; no image is latest or untagged."""
    compose = yaml.safe_load(compose_text)
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" in service:
            assert image == f"voucher-{name}:${{VOUCHER_VERSION:-{version}}}", f"{name}: {image}"
        else:
            tag = image.rpartition(":")[2] if ":" in image else ""
            assert tag and tag != "latest", f"{name}: {image} has no version"
    assert ":latest" not in compose_text


def test_make_images_tags_what_compose_and_kubernetes_run(
    root: Path, compose: dict[str, Any], version: str
) -> None:
    """`make images` builds every image compose builds, with the same build arguments, tagged
    with the version (DOCKER=echo prints the commands instead of running docker)."""
    out = subprocess.run(
        ["make", "-s", "images", "DOCKER=echo"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    built: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        argv = line.split()
        assert argv[0] == "build" and argv[-1] == ".", line
        tag = argv[argv.index("-t") + 1]
        args = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--build-arg")
        built[tag] = {"dockerfile": argv[argv.index("-f") + 1], **args}
    expected = {}
    for name, service in compose["services"].items():
        if "build" in service:
            build = service["build"]
            expected[f"voucher-{name}:{version}"] = {
                "dockerfile": build["dockerfile"],
                **{k: str(v) for k, v in (build.get("args") or {}).items()},
            }
    # and the invariants CronJob's image (Kubernetes only: compose runs the auditor by hand)
    expected[f"voucher-invariants:{version}"] = {"dockerfile": "deploy/Dockerfile", "SERVICE": "invariants"}
    assert built == expected
    other = subprocess.run(
        ["make", "-s", "images", "DOCKER=echo", "VOUCHER_VERSION=9.9.9-rc1"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "voucher-orders:9.9.9-rc1" in other


def readme_overlay(root: Path) -> str:
    """deploy/README.md's example overlay: the yaml block after "Images and versions"."""
    readme = (root / "deploy/README.md").read_text(encoding="utf-8")
    section = readme.split("### Images and versions", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "deploy/README.md, Images and versions: no overlay example"
    return match.group(1)


@pytest.mark.parametrize("renderer", RENDERERS)
def test_the_readmes_overlay_pins_the_images_to_a_registry_and_digests(
    root: Path, tmp_path: Path, version: str, renderer: str
) -> None:
    text = readme_overlay(root)
    overlay = yaml.safe_load(text)
    overlay["resources"] = [os.path.relpath(root / K8S, tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    objects = RENDERERS[renderer](tmp_path)
    check_images(objects, version)
    pinned = {n["name"]: n for n in overlay["images"]}
    for obj in objects:
        for container in containers(obj):
            image = container["image"]
            if image.startswith("voucher-"):
                assert image.split(":")[0] not in pinned, f"{image}: the overlay pins it"
            elif "@sha256:" in image:
                assert DIGEST.fullmatch(image), image
