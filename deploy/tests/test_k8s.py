"""deploy/k8s: render the Kustomize base and overlay offline, validate every resource against
the Kubernetes OpenAPI schemas (kubernetes-validate), and check probes, security and settings.

Rendering uses a small renderer for exactly the kustomization features deploy/k8s uses
(resources, namespace, labels, configMapGenerator with content hashes, images, JSON 6902
patches); anything else in a kustomization fails loudly. Where ``kubectl`` is installed, a test
checks that ``kubectl kustomize`` renders the very same resources.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from coursemesh.devstack.services import ServiceSpec

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy/k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSION = "1.33"
Manifest = dict[str, Any]
CheckEnv = Callable[[str, Mapping[str, str]], None]

# --- a renderer for the kustomization subset used here ------------------------------------------

_SUPPORTED = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "configMapGenerator",
    "images",
    "patches",
}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


class UnsupportedKustomization(Exception):
    pass


@dataclass
class _Layer:
    resources: list[Manifest] = field(default_factory=list)
    generated: set[str] = field(default_factory=set)  # ConfigMaps to hash at the end


def render(directory: Path) -> list[Manifest]:
    """The resources ``kustomize build directory`` would print (order aside)."""
    layer = _render_layer(directory)
    _hash_generated(layer)
    return layer.resources


def _render_layer(directory: Path) -> _Layer:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - _SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{directory}: unsupported fields {sorted(unknown)}")
    layer = _Layer()
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            sub = _render_layer(path)
            layer.resources += sub.resources
            layer.generated |= sub.generated
        else:
            layer.resources += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for generator in spec.get("configMapGenerator", []):
        _generate(layer, generator)
    for patch in spec.get("patches", []):
        _patch(layer, patch)
    if "namespace" in spec:
        _set_namespace(layer, spec["namespace"])
    for labels in spec.get("labels", []):
        if set(labels) - {"pairs"}:
            raise UnsupportedKustomization(f"labels options {sorted(set(labels) - {'pairs'})}")
        for resource in layer.resources:
            resource["metadata"].setdefault("labels", {}).update(labels["pairs"])
    for image in spec.get("images", []):
        _set_image(layer, image)
    return layer


def _generate(layer: _Layer, generator: Mapping[str, Any]) -> None:
    if set(generator) - {"name", "behavior", "literals"}:
        raise UnsupportedKustomization(f"configMapGenerator options {sorted(generator)}")
    name = generator["name"]
    data = dict(str(item).split("=", 1) for item in generator.get("literals", []))
    behavior = generator.get("behavior", "create")
    if behavior == "create":
        if name in layer.generated:
            raise UnsupportedKustomization(f"ConfigMap {name} generated twice")
        layer.resources.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        )
        layer.generated.add(name)
        return
    if behavior not in {"merge", "replace"} or name not in layer.generated:
        raise UnsupportedKustomization(f"configMapGenerator {name}: behavior {behavior}")
    (existing,) = (r for r in _find(layer, "ConfigMap", name))
    existing["data"] = {**existing["data"], **data} if behavior == "merge" else data


def _find(layer: _Layer, kind: str, name: str) -> Iterator[Manifest]:
    return (r for r in layer.resources if r["kind"] == kind and r["metadata"]["name"] == name)


def _patch(layer: _Layer, patch: Mapping[str, Any]) -> None:
    target = patch.get("target", {})
    if set(patch) != {"target", "patch"} or set(target) - {"kind", "name"}:
        raise UnsupportedKustomization(f"patch form {sorted(patch)} / target {sorted(target)}")
    operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise UnsupportedKustomization("only JSON 6902 patches (a list of operations)")
    matched = list(_find(layer, target["kind"], target["name"]))
    if not matched:
        raise UnsupportedKustomization(f"patch target {target} matches nothing")
    for resource in matched:
        for op in operations:
            _json_patch(resource, op)


def _json_patch(document: Manifest, op: Mapping[str, Any]) -> None:
    keys = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent: Any = document
    for key in keys[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last = keys[-1]
    kind = op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, op["value"])
        elif kind == "replace":
            parent[index] = op["value"]
        elif kind == "remove":
            del parent[index]
        else:
            raise UnsupportedKustomization(f"JSON patch op {kind}")
        return
    if kind == "replace" and last not in parent:
        raise UnsupportedKustomization(f"replace of a missing path {op['path']}")
    if kind in {"add", "replace"}:
        parent[last] = op["value"]
    elif kind == "remove":
        del parent[last]
    else:
        raise UnsupportedKustomization(f"JSON patch op {kind}")


def _set_namespace(layer: _Layer, namespace: str) -> None:
    for resource in layer.resources:
        if resource["kind"] == "Namespace":
            if resource["metadata"]["name"] != namespace:
                raise UnsupportedKustomization("renaming a Namespace resource")
        elif resource["kind"] not in _CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = namespace


def _pod_specs(resource: Manifest) -> Iterator[Manifest]:
    template = resource.get("spec", {}).get("template")
    if isinstance(template, dict) and "spec" in template:
        yield template["spec"]


def _containers(resource: Manifest) -> Iterator[Manifest]:
    for pod in _pod_specs(resource):
        yield from pod.get("initContainers", [])
        yield from pod.get("containers", [])


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def _set_image(layer: _Layer, image: Mapping[str, Any]) -> None:
    if set(image) - {"name", "newName", "newTag", "digest"}:
        raise UnsupportedKustomization(f"images options {sorted(image)}")
    for resource in layer.resources:
        for container in _containers(resource):
            name, tag, digest = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = str(image["newTag"]) if "newTag" in image else tag
            digest = image.get("digest", digest)
            reference = name + (f":{tag}" if tag else "")
            container["image"] = reference + (f"@{digest}" if digest else "")


def _hash_suffix(configmap: Manifest) -> str:
    """kustomize's name suffix: the first 10 hex digits of the sha256 of the Go JSON encoding of
    ``{"data", "kind", "name"}`` (kustomize v5 hashes with an empty name), vowels replaced."""
    encoded = json.dumps(
        {"data": configmap.get("data", {}), "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        encoded = encoded.replace(char, escape)
    return (
        hashlib.sha256(encoded.encode()).hexdigest()[:10].translate(str.maketrans("013ae", "ghkmt"))
    )


def _hash_generated(layer: _Layer) -> None:
    renamed: dict[str, str] = {}
    for resource in layer.resources:
        name = resource["metadata"]["name"]
        if resource["kind"] == "ConfigMap" and name in layer.generated:
            renamed[name] = f"{name}-{_hash_suffix(resource)}"
            resource["metadata"]["name"] = renamed[name]
    for resource in layer.resources:
        for pod in _pod_specs(resource):
            for volume in pod.get("volumes", []):
                if "configMap" in volume:
                    ref = volume["configMap"]
                    ref["name"] = renamed.get(ref["name"], ref["name"])
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                for source in container.get("envFrom", []):
                    ref = source.get("configMapRef")
                    if ref:
                        ref["name"] = renamed.get(ref["name"], ref["name"])
                for variable in container.get("env", []):
                    ref = variable.get("valueFrom", {}).get("configMapKeyRef")
                    if ref:
                        ref["name"] = renamed.get(ref["name"], ref["name"])


# --- fixtures -----------------------------------------------------------------------------------


def _key(resource: Manifest) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


@pytest.fixture(scope="module", params=[K8S / "base", *OVERLAYS], ids=lambda p: p.name)
def rendered(request: pytest.FixtureRequest) -> tuple[Path, list[Manifest]]:
    directory: Path = request.param
    return directory, render(directory)


def _by_kind(resources: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


# --- tests --------------------------------------------------------------------------------------


def test_there_is_a_production_overlay() -> None:
    assert K8S / "overlays/production" in OVERLAYS


def test_every_resource_matches_the_kubernetes_schema(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    _, resources = rendered
    assert resources
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{_key(resource)}: {exc.message} at {list(exc.path)}")


def test_kubectl_kustomize_renders_the_same(rendered: tuple[Path, list[Manifest]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the built-in renderer stands alone")
    directory, resources = rendered
    output = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    theirs = {_key(r): r for r in yaml.safe_load_all(output) if r}
    ours = {_key(r): r for r in resources}
    assert sorted(ours) == sorted(theirs)
    for key, resource in ours.items():
        assert resource == theirs[key], key


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(UnsupportedKustomization):
        render(tmp_path)


def test_services_deploy_with_probes_security_and_their_settings(
    rendered: tuple[Path, list[Manifest]], specs: tuple[ServiceSpec, ...], check_env: CheckEnv
) -> None:
    _, resources = rendered
    deployments = _by_kind(resources, "Deployment")
    configmaps = _by_kind(resources, "ConfigMap")
    assert set(deployments) == {s.name for s in specs} | {"gateway"}
    for spec in specs:
        pod = deployments[spec.name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert f"{spec.package}.main:create_app" in container["command"], spec.name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        port = container["command"][container["command"].index("--port") + 1]
        assert ports["http"] == int(port)
        for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
            assert container[probe]["httpGet"]["path"] == path, (spec.name, probe)
            assert container[probe]["httpGet"]["port"] in ("http", ports["http"])
        check_env(spec.name, _environment(container, configmaps))
        scrape = deployments[spec.name]["spec"]["template"]["metadata"]["annotations"]
        assert scrape["prometheus.io/scrape"] == "true", spec.name
        assert (int(scrape["prometheus.io/port"]), scrape["prometheus.io/path"]) == (
            ports["http"],
            "/metrics",
        )


def _environment(container: Manifest, configmaps: Mapping[str, Manifest]) -> dict[str, str]:
    """The container's variables; values from Secrets or the downward API become placeholders."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom {source}"
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        assert variable["name"] not in env, f"{variable['name']} set twice"
        env[variable["name"]] = variable.get("value", "from-a-reference")
    return env


def test_pods_run_unprivileged_with_a_read_only_root(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    _, resources = rendered
    workloads = [r for r in resources if r["kind"] in {"Deployment", "Job"}]
    assert workloads
    for resource in workloads:
        pod = next(_pod_specs(resource))
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, _key(resource)
        assert security["runAsUser"] != 0, _key(resource)
        for container in _containers(resource):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, _key(resource)
            assert ctx["allowPrivilegeEscalation"] is False, _key(resource)
            assert ctx["capabilities"]["drop"] == ["ALL"], _key(resource)
            assert container["resources"]["requests"], _key(resource)
            assert container["resources"]["limits"]["memory"], _key(resource)


def test_each_deployment_has_a_service_an_hpa_and_a_pdb(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    _, resources = rendered
    services = _by_kind(resources, "Service")
    hpas = _by_kind(resources, "HorizontalPodAutoscaler")
    pdbs = _by_kind(resources, "PodDisruptionBudget")
    for name, deployment in _by_kind(resources, "Deployment").items():
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns replicas"
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        service = services[name]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        port_names = {p["name"] for c in _containers(deployment) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
        target = hpas[name]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert hpas[name]["spec"]["minReplicas"] >= 2
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_each_service_pod_migrates_its_schema_in_an_init_container(
    rendered: tuple[Path, list[Manifest]],
    specs: tuple[ServiceSpec, ...],
    settings_names: Callable[[str], set[str]],
) -> None:
    """Migrations run before each service container, from the same image: no Job (immutable,
    and deleted after its TTL) stands in the way of the next ``kubectl apply -k``."""
    _, resources = rendered
    assert not _by_kind(resources, "Job")
    assert not _by_kind(resources, "CronJob")
    deployments = _by_kind(resources, "Deployment")
    for spec in specs:
        pod = deployments[spec.name]["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        (service_container,) = pod["containers"]
        assert init["name"] == "migrate", spec.name
        assert init["command"] == ["python", "-m", "coursemesh.chassis.migrate", spec.name]
        assert init["image"] == service_container["image"], spec.name
        assert "restartPolicy" not in init, f"{spec.name}: a sidecar would never finish"
        names = {v["name"] for v in init["env"]}
        assert f"{spec.env_prefix}DATABASE_URL" in names
        assert names <= settings_names(spec.name)
        database = {v["name"]: v for v in service_container["env"]}[
            f"{spec.env_prefix}DATABASE_URL"
        ]
        assert {v["name"]: v for v in init["env"]}[database["name"]] == database, spec.name
        mounts = {m["name"] for m in init.get("volumeMounts", [])}
        assert mounts <= {v["name"] for v in pod.get("volumes", [])}, spec.name
    assert "initContainers" not in deployments["gateway"]["spec"]["template"]["spec"]


def test_a_new_image_tag_renders_new_pods_and_nothing_immutable(
    tmp_path: Path, specs: tuple[ServiceSpec, ...]
) -> None:
    """Two releases applied one after the other (a new tag within minutes): every object of
    the second is an in-place update of the first (no Job, whose pod template cannot change),
    and the migrating initContainer runs the new image."""
    releases = {}
    for tag in ("1.4.0", "1.4.1"):
        overlay = tmp_path / tag
        overlay.mkdir()
        images = "".join(
            f"  - name: coursemesh/{spec.package.rsplit('.', 1)[-1]}\n    newTag: {tag!r}\n"
            for spec in specs
        )
        (overlay / "kustomization.yaml").write_text(
            f"resources:\n  - {K8S / 'base'}\nimages:\n{images}"
        )
        releases[tag] = {_key(r): r for r in render(overlay)}
    first, second = releases["1.4.0"], releases["1.4.1"]
    assert sorted(first) == sorted(second)
    assert not {kind for kind, _ in second} & {"Job", "CronJob"}
    for spec in specs:
        pod = second["Deployment", spec.name]["spec"]["template"]["spec"]
        for container in [*pod["initContainers"], *pod["containers"]]:
            assert container["image"].endswith(":1.4.1"), container["image"]
        before = first["Deployment", spec.name]["spec"]["template"]["spec"]
        assert before["initContainers"][0]["image"].endswith(":1.4.0")


def test_gateway_config_matches_the_caddyfile(
    rendered: tuple[Path, list[Manifest]],
    specs: tuple[ServiceSpec, ...],
    caddy_placeholders: dict[str, str | None],
) -> None:
    _, resources = rendered
    gateway = _by_kind(resources, "Deployment")["gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    env = _environment(container, _by_kind(resources, "ConfigMap"))
    assert set(env) <= set(caddy_placeholders), set(env) - set(caddy_placeholders)
    required = {name for name, default in caddy_placeholders.items() if default is None}
    assert required - {"JWKS_DIR"} <= set(env)  # production identity is Clerk's JWKS URL
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["GATEWAY_PORT"]) == ports["http"]
    services = _by_kind(resources, "Service")
    for spec in specs:
        host, _, port = env[spec.upstreams_var].partition(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, spec.name
        assert host == spec.name


def test_secrets_are_referenced_not_stored(rendered: tuple[Path, list[Manifest]]) -> None:
    _, resources = rendered
    assert not _by_kind(resources, "Secret")
    docs = (REPO / "docs/deploy.md").read_text()
    for resource in resources:
        for container in _containers(resource):
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert f"`{ref['name']}`" in docs, ref
                    assert f"`{ref['key']}`" in docs, ref


def test_commerce_sandbox_webhook_key_only_ever_comes_from_a_secret(
    rendered: tuple[Path, list[Manifest]],
) -> None:
    """No manifest holds a sandbox webhook key; a commerce that runs the sandbox provider (the
    settings' default) must take it from a Secret, or it would not start."""
    _, resources = rendered
    configmaps = _by_kind(resources, "ConfigMap")
    for configmap in configmaps.values():
        assert not any(k.endswith("SANDBOX_WEBHOOK_KEY") for k in configmap.get("data", {}))
    (commerce,) = _by_kind(resources, "Deployment")["commerce"]["spec"]["template"]["spec"][
        "containers"
    ]
    variables = {v["name"]: v for v in commerce.get("env", [])}
    key = variables.get("COMMERCE_SANDBOX_WEBHOOK_KEY")
    if key is not None:
        assert "value" not in key, key
        assert key["valueFrom"]["secretKeyRef"], key
    provider = _environment(commerce, configmaps).get("COMMERCE_PAYMENT_PROVIDER", "sandbox")
    assert provider == "stripe" or key is not None


def test_production_overlay_uses_r2_pinned_images_and_an_ingress() -> None:
    resources = render(K8S / "overlays/production")
    config = _by_kind(resources, "ConfigMap")
    (customgen,) = (c for n, c in config.items() if n.startswith("custom-gen-config-"))
    assert customgen["data"]["CUSTOMGEN_S3_ENDPOINT"].endswith(".r2.cloudflarestorage.com")
    assert customgen["data"]["CUSTOMGEN_S3_REGION"] == "auto"
    for resource in resources:
        for container in _containers(resource):
            _, tag, digest = _split_image(container["image"])
            assert digest or (tag and tag != "latest"), container["image"]
    ingress = _by_kind(resources, "Ingress")["gateway"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway"


def test_production_streams_keep_three_copies_and_the_base_one(
    specs: tuple[ServiceSpec, ...],
) -> None:
    """Every service creates its streams with the replicas of its overlay: 3 on production's
    JetStream cluster; the base (a single NATS server) leaves the default, 1."""
    for overlay, wanted in ((K8S / "overlays/production", "3"), (K8S / "base", None)):
        config = _by_kind(render(overlay), "ConfigMap")
        for spec in specs:
            (data,) = (c["data"] for n, c in config.items() if n.startswith(f"{spec.name}-config"))
            assert data.get(f"{spec.env_prefix}STREAM_REPLICAS") == wanted, (overlay, spec.name)


def test_renderer_applies_patches_and_hashes_like_kustomize() -> None:
    base = {
        r["metadata"]["name"]: r
        for r in render(K8S / "base")
        if r["kind"] == "HorizontalPodAutoscaler"
    }
    prod = {
        r["metadata"]["name"]: r
        for r in render(K8S / "overlays/production")
        if r["kind"] == "HorizontalPodAutoscaler"
    }
    assert base["catalog"]["spec"]["minReplicas"] == 2
    assert prod["catalog"]["spec"]["minReplicas"] == 3
    one = {"metadata": {"name": "x"}, "data": {"A": "1"}}
    assert _hash_suffix(one) != _hash_suffix({"metadata": {"name": "x"}, "data": {"A": "2"}})
