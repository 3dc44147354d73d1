from __future__ import annotations

import socket

from coursemesh.devstack.ports import (
    GRPC_OFFSET,
    RESERVED_PORTS,
    claim_port,
    free_port,
    free_ports,
    is_port_free,
    release_ports,
)


def test_free_ports_are_distinct_bindable_and_never_reserved() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert not set(ports) & RESERVED_PORTS
    assert all(is_port_free(p) for p in ports)
    release_ports(ports)


def test_partner_port_is_free_too() -> None:
    port = free_port(partner_offset=GRPC_OFFSET)
    assert port + GRPC_OFFSET < 65536
    assert is_port_free(port)
    assert is_port_free(port + GRPC_OFFSET)
    release_ports([port, port + GRPC_OFFSET])


def test_claim_port_prefers_a_free_port_and_avoids_a_busy_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not is_port_free(taken)
        assert claim_port(taken) != taken
    preferred = free_port()
    release_ports([preferred])
    assert claim_port(preferred) == preferred
    assert claim_port(5432) != 5432  # never the system PostgreSQL's port
    assert claim_port(4222) != 4222  # nor NATS's
