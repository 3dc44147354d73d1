"""docker-compose.yml: names, environment (exactly the services' settings), ports, the gateway's
Caddyfile variables, healthchecks, migrations, n8n and the Dockerfiles, checked offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from coursemesh.devstack.services import ServiceSpec

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
INFRASTRUCTURE = {
    "postgres",
    "nats",
    "s3",
    "s3-init",
    "mailpit",
    "jaeger",
    "otel-collector",
    "prometheus",
    "grafana",
    "n8n",
    "dev-keys",
    "gateway",
}
CheckEnv = Callable[[str, Mapping[str, str]], None]
Service = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    result: dict[str, Service] = compose["services"]
    return result


def _env(service: Service) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, please"
    return {k: str(v) for k, v in env.items()}


def _arg(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _healthcheck_text(service: Service) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_compose_has_every_expected_service(
    services: dict[str, Service], specs: tuple[ServiceSpec, ...]
) -> None:
    expected = INFRASTRUCTURE | {s.name for s in specs} | {f"{s.name}-migrate" for s in specs}
    assert set(services) == expected


def test_services_set_exactly_their_settings(
    services: dict[str, Service], specs: tuple[ServiceSpec, ...], check_env: CheckEnv
) -> None:
    for spec in specs:
        env = _env(services[spec.name])
        check_env(spec.name, env)
        assert env[f"{spec.env_prefix}OTEL_EXPORTER"] == "otlp"


def test_prefixed_variables_anywhere_are_settings_or_gateway_upstreams(
    services: dict[str, Service],
    specs: tuple[ServiceSpec, ...],
    settings_names: Callable[[str], set[str]],
) -> None:
    for name, service in services.items():
        for key in _env(service):
            for spec in specs:
                if not key.startswith(spec.env_prefix):
                    continue
                if name == "gateway":
                    assert key == spec.upstreams_var, key
                else:
                    assert key in settings_names(spec.name), f"{name}: {key}"


def test_services_run_their_app_and_migrate_first(
    services: dict[str, Service],
    specs: tuple[ServiceSpec, ...],
    settings_names: Callable[[str], set[str]],
) -> None:
    for spec in specs:
        service = services[spec.name]
        command = service["command"]
        assert command[:4] == ["python", "-m", "uvicorn", "--factory"]
        assert _arg(command, "--factory") == spec.app_factory
        assert _arg(command, "--host") == "0.0.0.0"
        depends = service["depends_on"]
        migrate = f"{spec.name}-migrate"
        assert depends[migrate]["condition"] == "service_completed_successfully"
        job = services[migrate]
        assert job["command"] == ["python", "-m", "coursemesh.chassis.migrate", spec.name]
        assert job["image"] == service["image"]
        assert job.get("restart") == "no"
        job_env = _env(job)
        database = f"{spec.env_prefix}DATABASE_URL"
        assert set(job_env) <= settings_names(spec.name)
        assert job_env[database] == _env(service)[database]
        assert urlsplit(job_env[database]).hostname in services
        assert depends["nats"]["condition"] == "service_healthy"
        # The image is built for this service's distribution.
        assert service["build"]["args"]["SERVICE"] == spec.package.removeprefix("coursemesh.")


def test_healthchecks_target_the_health_endpoints(
    services: dict[str, Service], specs: tuple[ServiceSpec, ...]
) -> None:
    for spec in specs:
        port = _arg(services[spec.name]["command"], "--port")
        assert f"127.0.0.1:{port}/health/ready" in _healthcheck_text(services[spec.name])
    gateway_port = _env(services["gateway"])["GATEWAY_PORT"]
    assert f"127.0.0.1:{gateway_port}/health/gateway" in _healthcheck_text(services["gateway"])
    assert "/health/gateway" in (REPO / "deploy/gateway/Caddyfile").read_text()
    for name in ("postgres", "nats", "n8n"):
        assert "healthcheck" in services[name], name


def test_gateway_variables_match_the_caddyfile(
    services: dict[str, Service],
    specs: tuple[ServiceSpec, ...],
    caddy_placeholders: dict[str, str | None],
) -> None:
    gateway = services["gateway"]
    env = _env(gateway)
    assert set(env) <= set(caddy_placeholders), set(env) - set(caddy_placeholders)
    required = {name for name, default in caddy_placeholders.items() if default is None}
    assert required <= set(env), required - set(env)
    for spec in specs:
        upstreams = env[spec.upstreams_var].split()
        assert upstreams, spec.name
        for upstream in upstreams:
            host, _, port = upstream.partition(":")
            assert host == spec.name
            assert port == _arg(services[host]["command"], "--port"), upstream
    published = [str(p) for p in gateway["ports"]]
    assert any(p.endswith(f":{env['GATEWAY_PORT']}") for p in published), published
    assert env["GATEWAY_BIND"] == "0.0.0.0"
    # Development JWKS: the gateway serves the dev-keys volume, the services read it there.
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in gateway["volumes"]}
    assert mounts[env["JWKS_DIR"]] == "dev-keys"
    jwks_url = f"http://gateway:{env['GATEWAY_PORT']}/.well-known/jwks.json"
    for spec in specs:
        assert _env(services[spec.name])[f"{spec.env_prefix}JWKS_URL"] == jwks_url


def test_telemetry_goes_to_the_collector(
    services: dict[str, Service], specs: tuple[ServiceSpec, ...]
) -> None:
    collector = yaml.safe_load((REPO / "deploy/otel/collector.yaml").read_text())
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert "traces" in collector["service"]["pipelines"]
    for spec in specs:
        endpoint = urlsplit(_env(services[spec.name])[f"{spec.env_prefix}OTEL_ENDPOINT"])
        assert endpoint.hostname == "otel-collector"
        assert str(endpoint.port) == http.rpartition(":")[2]
        assert endpoint.path == "/v1/traces"
    exporters = collector["exporters"]
    jaeger = next(v for k, v in exporters.items() if k.startswith("otlp"))
    assert jaeger["endpoint"].split(":")[0] in services


def test_metrics_reach_prometheus_and_the_dashboard_is_provisioned(
    services: dict[str, Service],
) -> None:
    collector = yaml.safe_load((REPO / "deploy/otel/collector.yaml").read_text())
    assert collector["service"]["pipelines"]["metrics"]["receivers"] == ["otlp"]
    assert "prometheus" in collector["service"]["pipelines"]["metrics"]["exporters"]
    served = collector["exporters"]["prometheus"]["endpoint"].rpartition(":")[2]
    prometheus = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"otel-collector:{served}"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in services["grafana"]["volumes"]}
    dashboards = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/coursemesh.yml").read_text()
    )
    folder = dashboards["providers"][0]["options"]["path"]
    assert mounts[f"{folder}/coursemesh.json"] == "./deploy/grafana/coursemesh.json"
    sources = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def test_n8n_serves_the_shipped_workflow(services: dict[str, Service]) -> None:
    workflow = json.loads((REPO / "deploy/n8n/custom-course-scripts.json").read_text())
    (webhook,) = (n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.webhook")
    n8n = services["n8n"]
    script = " ".join(n8n["command"])
    assert f"--id={workflow['id']}" in script
    mounted = {str(v).split(":")[1]: str(v).split(":")[0] for v in n8n["volumes"]}
    (path_in_container,) = re.findall(r"--input=(\S+)", script)
    assert mounted[path_in_container] == "./deploy/n8n/custom-course-scripts.json"
    env = _env(services["custom-gen"])
    url = urlsplit(env["CUSTOMGEN_N8N_WEBHOOK_URL"])
    assert env["CUSTOMGEN_SCRIPT_WRITER"] == "n8n"
    assert url.hostname == "n8n"
    assert str(url.port) == str(n8n["environment"]["N8N_PORT"])
    assert url.path == f"/webhook/{webhook['parameters']['path']}"


def test_s3_and_smtp_are_wired(services: dict[str, Service]) -> None:
    customgen = _env(services["custom-gen"])
    init = _env(services["s3-init"])
    for key, value in init.items():
        assert customgen[key] == value, key
    assert urlsplit(customgen["CUSTOMGEN_S3_ENDPOINT"]).hostname == "s3"
    credentials = json.loads((REPO / "deploy/docker/seaweedfs-s3.json").read_text())
    keys = credentials["identities"][0]["credentials"][0]
    assert keys["accessKey"] == customgen["CUSTOMGEN_S3_ACCESS_KEY"]
    assert keys["secretKey"] == customgen["CUSTOMGEN_S3_SECRET_KEY"]
    commerce = _env(services["commerce"])
    assert commerce["COMMERCE_SMTP_HOST"] == "mailpit"
    assert commerce["COMMERCE_SMTP_PORT"] == "1025"  # Mailpit's SMTP port
    assert commerce["COMMERCE_WEBHOOK_TARGET_BASE_URL"].startswith("http://gateway:")
    assert "-js" in services["nats"]["command"]


def test_sandbox_webhook_key_is_required_and_has_no_default(services: dict[str, Service]) -> None:
    """Every org's sandbox webhook secret derives from this key: a default in the file would
    let anyone sign a payment for any org, so compose stops unless it is set."""
    value = _env(services["commerce"])["COMMERCE_SANDBOX_WEBHOOK_KEY"]
    assert re.fullmatch(r"\$\{COMMERCE_SANDBOX_WEBHOOK_KEY:\?[^}]+\}", value), value
    for name, service in services.items():
        keys = [k for k in _env(service) if k.endswith("SANDBOX_WEBHOOK_KEY")]
        assert keys == (["COMMERCE_SANDBOX_WEBHOOK_KEY"] if name == "commerce" else []), name


def test_bind_mounted_files_exist(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source}"
        build = service.get("build")
        if build:
            assert (REPO / build["context"] / build["dockerfile"]).is_file(), name


def test_service_dockerfile_copies_every_workspace_member_and_runs_unprivileged() -> None:
    dockerfile = (REPO / "deploy/docker/service.Dockerfile").read_text()
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members = [
        p.relative_to(REPO).as_posix()
        for pattern in root["tool"]["uv"]["workspace"]["members"]
        for p in sorted(REPO.glob(f"{pattern}/pyproject.toml"))
    ]
    assert members
    for member in members:
        assert f"COPY {member} {member}" in dockerfile, member
    assert "uv sync --frozen --no-dev" in dockerfile
    assert '--package "coursemesh-${SERVICE}"' in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}
    gateway = (REPO / "deploy/docker/gateway.Dockerfile").read_text()
    assert "COPY deploy/gateway/Caddyfile /etc/caddy/Caddyfile" in gateway
    users = re.findall(r"^USER (\S+)", gateway, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"0", "root"}
    for name in ("service", "gateway"):
        assert (REPO / f"deploy/docker/{name}.Dockerfile.dockerignore").is_file()


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if plugin.returncode != 0:
        pytest.skip("docker CLI without the compose plugin")
    argv = [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    environ = {k: v for k, v in os.environ.items() if k != "COMMERCE_SANDBOX_WEBHOOK_KEY"}
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**environ, "COMMERCE_SANDBOX_WEBHOOK_KEY": "k-test"},
    )
    assert result.returncode == 0, result.stderr
    unset = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO, env=environ)
    assert unset.returncode != 0
    assert "sandbox provider is for testing only" in unset.stderr
