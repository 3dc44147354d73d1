"""The scale-out pieces of ``deploy/``: a three-node JetStream cluster (the NATS Helm chart's
values) and PostgreSQL through CloudNativePG, consistent with what the services expect."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[1]


def test_nats_values_describe_a_three_node_jetstream_cluster_with_storage() -> None:
    values = yaml.safe_load((DEPLOY / "nats/values.yaml").read_text())
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    jetstream = values["config"]["jetstream"]
    assert jetstream["enabled"] is True
    assert jetstream["fileStore"]["pvc"]["enabled"] is True
    # one server per node: losing a node loses one copy of each stream, not two
    spread = values["podTemplate"]["topologySpreadConstraints"]["kubernetes.io/hostname"]
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"


def test_the_cloudnativepg_cluster_has_a_primary_and_two_replicas_on_separate_nodes() -> None:
    cluster = yaml.safe_load((DEPLOY / "postgres/cluster.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("postgresql.cnpg.io/v1", "Cluster")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["bootstrap"]["initdb"] == {"database": "coursemesh", "owner": "coursemesh"}
    # the URL the file tells operators to put in the services' database Secret
    text = (DEPLOY / "postgres/cluster.yaml").read_text()
    assert "postgresql+asyncpg://coursemesh:<password>@coursemesh-pg-rw:5432/coursemesh" in text
