"""A changed setting rolls the pods: voucher-config is generated from deploy/k8s/config.env
(kustomize's configMapGenerator) with a hash of its content in its name, and every workload
that reads it is rendered with the new name, so `kubectl apply -k deploy/k8s` rolls them.
Both renderers: kubectl's kustomize where installed, and tests/deploy/k8s_render.py's Python
one (CI has no kubectl)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .k8s_render import K8S, generated, kind_and_name, render, render_in_python, with_config_env

RENDERERS = {"render": render, "render_in_python": render_in_python}


def config_references(obj: dict[str, Any]) -> list[str]:
    """Every ConfigMap name the object's pods read (envFrom, env valueFrom, volumes)."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("configMapRef", "configMapKeyRef", "configMap"):
                if isinstance(node.get(key), dict):
                    names.append(node[key]["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(obj.get("spec", {}))
    return names


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_changed_setting_renames_the_configmap_and_every_workload_follows(
    root: Path, tmp_path: Path, renderer: str
) -> None:
    render_with = RENDERERS[renderer]
    before = render_with(root / K8S)
    after = render_with(with_config_env(root / K8S, tmp_path, {"LOG_LEVEL": "WARNING"}))
    old = generated(before, "ConfigMap", "voucher-config")
    new = generated(after, "ConfigMap", "voucher-config")
    assert old["data"]["LOG_LEVEL"] == "INFO" and new["data"]["LOG_LEVEL"] == "WARNING"
    assert old["metadata"]["name"] != new["metadata"]["name"], "the same name: no pod would roll"
    readers = {kind_and_name(o) for o in before if old["metadata"]["name"] in config_references(o)}
    deployments = {kind_and_name(o) for o in before if o["kind"] == "Deployment"}
    # every Deployment of the suite reads it (the Pushgateway alone reads no setting)
    assert deployments - readers == {("Deployment", "pushgateway")}
    assert {("CronJob", "voucher-backup"), ("CronJob", "voucher-invariants")} <= readers
    for obj in after:
        refs = config_references(obj)
        assert old["metadata"]["name"] not in refs, f"{kind_and_name(obj)} still reads the old ConfigMap"
        if kind_and_name(obj) in readers:
            assert new["metadata"]["name"] in refs, kind_and_name(obj)
    # nothing but the ConfigMap and its readers changed
    unchanged = {kind_and_name(o): o for o in before if kind_and_name(o) not in readers and o is not old}
    for obj in after:
        if kind_and_name(obj) in unchanged:
            assert obj == unchanged[kind_and_name(obj)], kind_and_name(obj)


def test_the_same_settings_keep_the_name(root: Path, tmp_path: Path) -> None:
    """The name depends on the content only: an apply without a change rolls nothing."""
    same = render_in_python(with_config_env(root / K8S, tmp_path, {"LOG_LEVEL": "INFO"}))
    assert (
        generated(same, "ConfigMap", "voucher-config")["metadata"]["name"]
        == generated(render_in_python(root / K8S), "ConfigMap", "voucher-config")["metadata"]["name"]
    )
