"""The compose profile ``nats-cluster`` (docker-compose.nats-cluster.yml over docker-compose.yml):
three JetStream nodes routed to each other, services reaching all three with three copies of
every stream. Checked offline on the merged configuration, then for real: three
``nats-server`` processes with the profile's cluster arguments place a 3-replica stream on
all three servers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
import yaml

from coursemesh.devstack.infra.nats import http_ok
from coursemesh.devstack.ports import free_ports
from coursemesh.devstack.process import ManagedProcess, find_binary, wait_until
from coursemesh.devstack.services import ServiceSpec
from coursemesh.devstack.testing import assert_pids_gone

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
CLUSTER_FILE = REPO / "docker-compose.nats-cluster.yml"
NODE_NAMES = {"nats-1", "nats-2", "nats-3"}
Service = dict[str, Any]


def merge(base: Any, override: Any) -> Any:
    """Compose's merge for what these files use: mappings merge key by key, anything else
    (``command``, a healthcheck's ``test``) is replaced by the override's value."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


@pytest.fixture(scope="module")
def single() -> dict[str, Service]:
    services: dict[str, Service] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


@pytest.fixture(scope="module")
def cluster() -> dict[str, Service]:
    base = yaml.safe_load(COMPOSE_FILE.read_text())
    merged = merge(base, yaml.safe_load(CLUSTER_FILE.read_text()))
    services: dict[str, Service] = merged["services"]
    return services


def nodes(services: Mapping[str, Service]) -> dict[str, Service]:
    return {n: s for n, s in services.items() if str(s.get("image", "")).startswith("nats:")}


def flags(command: list[str]) -> dict[str, str]:
    """``-flag value`` pairs of a nats-server command line (a flag without a value: "")."""
    found: dict[str, str] = {}
    for i, word in enumerate(command):
        if word.startswith("-"):
            following = command[i + 1] if i + 1 < len(command) else "-"
            found[word] = "" if following.startswith("-") else following
    return found


def answering(services: Mapping[str, Service], host: str) -> set[str]:
    """The services a host name reaches on the compose network (service names and aliases)."""
    found = set()
    for name, service in services.items():
        networks = service.get("networks") or {}
        aliases = {a for n in networks.values() if n for a in n.get("aliases", [])}
        if host == name or host in aliases:
            found.add(name)
    return found


def url_hosts(urls: str) -> list[str]:
    return [str(urlsplit(url.strip()).hostname) for url in urls.split(",") if url.strip()]


def test_the_default_file_runs_one_node_and_one_copy(
    single: dict[str, Service], specs: tuple[ServiceSpec, ...]
) -> None:
    (name,) = nodes(single)
    assert "--cluster" not in flags(single[name]["command"])
    for spec in specs:
        env = single[spec.name]["environment"]
        assert env.get(f"{spec.env_prefix}STREAM_REPLICAS", "1") == "1"


def test_the_profile_runs_three_jetstream_nodes_in_one_cluster(
    cluster: dict[str, Service],
) -> None:
    found = nodes(cluster)
    assert len(found) == 3
    options = [flags(service["command"]) for service in found.values()]
    assert all("-js" in o for o in options)
    assert {o["--server_name"] for o in options} == NODE_NAMES
    assert len({o["--cluster_name"] for o in options}) == 1
    assert {o["--cluster"] for o in options} == {"nats://0.0.0.0:6222"}
    # each node keeps its JetStream store on a volume of its own
    stores = []
    for service, option in zip(found.values(), options, strict=True):
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service["volumes"]}
        stores.append(mounts[option["-sd"]])
    assert len(set(stores)) == 3
    for service in found.values():
        test = " ".join(service["healthcheck"]["test"])
        assert "/healthz" in test
        assert "js-enabled-only" not in test  # healthy only once the cluster has a meta leader


def test_every_node_routes_to_the_other_two(cluster: dict[str, Service]) -> None:
    found = nodes(cluster)
    for name, service in found.items():
        targets = set()
        for host in url_hosts(flags(service["command"])["--routes"]):
            reached = answering(cluster, host)
            assert len(reached) == 1, f"{name}: route host {host} is ambiguous: {reached}"
            targets |= reached
        assert targets >= set(found) - {name}, name


def test_services_reach_all_three_nodes_and_keep_three_copies(
    cluster: dict[str, Service],
    specs: tuple[ServiceSpec, ...],
    check_env: Any,
) -> None:
    found = set(nodes(cluster))
    for spec in specs:
        service = cluster[spec.name]
        env = {k: str(v) for k, v in service["environment"].items()}
        check_env(spec.name, env)  # the merged environment still loads as the settings
        reached = set()
        for host in url_hosts(env[f"{spec.env_prefix}NATS_URL"]):
            reached |= answering(cluster, host)
        assert reached == found, spec.name
        assert env[f"{spec.env_prefix}STREAM_REPLICAS"] == "3"
        for node in found:
            assert service["depends_on"][node]["condition"] == "service_healthy", spec.name


def test_docker_compose_config_merges_the_profile() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], check=False).returncode:
        pytest.skip("no docker CLI with the compose plugin")
    argv = [docker, "compose", "-f", str(COMPOSE_FILE), "-f", str(CLUSTER_FILE)]
    env = {**os.environ, "COMMERCE_SANDBOX_WEBHOOK_KEY": "k-test"}
    done = subprocess.run(
        [*argv, "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert set(nodes(services)) == {"nats", "nats-2", "nats-3"}
    assert services["catalog"]["environment"]["CATALOG_STREAM_REPLICAS"] == "3"


# --- three real servers with the profile's cluster arguments ----------------------------------


def local_argv(
    command: list[str],
    *,
    store: Path,
    ports: Mapping[str, tuple[int, int, int]],
    me: str,
    cluster: Mapping[str, Service],
) -> list[str]:
    """The node's compose command with addresses made local: each node's client, monitor and
    route ports from ``ports``, each route host replaced by the local route port of the node
    that name reaches, the store in ``store``. Names, cluster name and JetStream stay as is."""
    option = flags(command)
    client, monitor, route = ports[me]
    routes = []
    for host in url_hosts(option["--routes"]):
        (node,) = answering(cluster, host)
        routes.append(f"nats://127.0.0.1:{ports[node][2]}")
    rewritten = {
        "-sd": str(store),
        "-m": str(monitor),
        "--cluster": f"nats://127.0.0.1:{route}",
        "--routes": ",".join(routes),
    }
    argv = [str(find_binary("nats-server")), "-a", "127.0.0.1", "-p", str(client)]
    for flag, value in option.items():
        argv += [flag, rewritten.get(flag, value)] if value else [flag]
    return argv


@pytest.fixture
def three_servers(tmp_path: Path, cluster: dict[str, Service]) -> Iterator[dict[str, int]]:
    """The profile's three nodes as local processes; yields node -> client port."""
    found = nodes(cluster)
    ports: dict[str, tuple[int, int, int]] = {}
    for name in found:
        client, monitor, route = free_ports(3)
        ports[name] = (client, monitor, route)
    processes = []
    try:
        for name, service in found.items():
            argv = local_argv(
                service["command"], store=tmp_path / name, ports=ports, me=name, cluster=cluster
            )
            processes.append(ManagedProcess(name, argv, log_path=tmp_path / f"{name}.log").start())
        for process in processes:
            monitor = ports[process.name][1]
            wait_until(
                partial(http_ok, f"http://127.0.0.1:{monitor}/healthz"),
                timeout=30.0,
                what=f"{process.name} current with the JetStream meta leader",
                process=process,
            )
        yield {name: port[0] for name, port in ports.items()}
    finally:
        pids = [p.pid for p in processes if p.pid is not None]
        for process in processes:
            process.stop()
        assert_pids_gone(pids)


async def _placement(urls: list[str]) -> tuple[set[str], int]:
    nc = await nats.connect(servers=urls)
    try:
        js = nc.jetstream()
        await js.add_stream(name="CLUSTERED", subjects=["clustered.>"], num_replicas=3)
        ack = await js.publish("clustered.hello", b"hi")
        info = await js.stream_info("CLUSTERED")
        assert info.cluster is not None
        peers = {info.cluster.leader, *(r.name for r in info.cluster.replicas or [])}
        return {p for p in peers if p}, ack.seq
    finally:
        await nc.close()


def test_three_servers_with_the_profile_arguments_place_a_stream_on_all_three(
    three_servers: dict[str, int],
) -> None:
    urls = [f"nats://127.0.0.1:{port}" for port in three_servers.values()]
    peers, seq = asyncio.run(_placement(urls))
    assert seq == 1
    assert peers == NODE_NAMES
