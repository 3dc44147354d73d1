"""Free TCP ports on 127.0.0.1 that never collide with system services or with each other,
held until our child binds them, and checked to be bound by that child (not by someone else)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable

import psutil  # type: ignore[import-untyped]  # no stubs in the lock file

#: Ports a machine's own services may use (PostgreSQL, NATS client/cluster/monitor): never
#: handed out by :func:`free_port` nor accepted by :func:`claim_port`.
RESERVED_PORTS: frozenset[int] = frozenset({5432, 4222, 6222, 8222})

#: SeaweedFS listens on ``port + GRPC_OFFSET`` for gRPC next to every HTTP port.
GRPC_OFFSET = 10_000

_lock = threading.Lock()
_handed_out: set[int] = set()
_held: dict[int, socket.socket] = {}


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on ``host:port`` right now (``SO_REUSEADDR``, as
    servers bind, so connections of a previous run in TIME_WAIT do not count)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _os_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port(
    *, host: str = "127.0.0.1", partner_offset: int | None = None, attempts: int = 200
) -> int:
    """A free port chosen by the OS (bind to port 0), never a reserved one nor one this process
    already handed out. With ``partner_offset``, ``port + partner_offset`` is free too."""
    with _lock:
        for _ in range(attempts):
            port = _os_port(host)
            candidates = [port] if partner_offset is None else [port, port + partner_offset]
            if any(p in RESERVED_PORTS or p in _handed_out for p in candidates):
                continue
            if partner_offset is not None and not is_port_free(port + partner_offset, host):
                continue
            _handed_out.update(candidates)
            return port
    raise RuntimeError("no free TCP port found")


def free_ports(
    count: int, *, host: str = "127.0.0.1", partner_offset: int | None = None
) -> list[int]:
    """``count`` distinct free ports (see :func:`free_port`)."""
    return [free_port(host=host, partner_offset=partner_offset) for _ in range(count)]


def claim_port(
    preferred: int | None, *, host: str = "127.0.0.1", partner_offset: int | None = None
) -> int:
    """``preferred`` when it (and its partner) is free and not reserved, else a fresh free port.
    Used to keep ports stable across restarts of the stack."""
    if preferred is not None and _usable(preferred, host, partner_offset):
        with _lock:
            if preferred not in _handed_out:
                _handed_out.add(preferred)
                if partner_offset is not None:
                    _handed_out.add(preferred + partner_offset)
                return preferred
    return free_port(host=host, partner_offset=partner_offset)


def _usable(port: int, host: str, partner_offset: int | None) -> bool:
    ports: Iterable[int] = [port] if partner_offset is None else [port, port + partner_offset]
    return all(p not in RESERVED_PORTS and is_port_free(p, host) for p in ports)


def release_ports(ports: Iterable[int]) -> None:
    """Forget ports handed out earlier so they may be handed out again."""
    with _lock:
        _handed_out.difference_update(ports)


def hold_port(port: int, host: str = "127.0.0.1") -> bool:
    """Keep ``host:port`` bound (without ``SO_REUSEADDR``, never listening) until
    :func:`unhold_ports`, so no other process can bind it meanwhile: another stack's
    :func:`is_port_free` says "busy" and a server started on it fails to bind. False when the
    bind fails (someone listens there, or a connection of a previous run lingers in TIME_WAIT).
    Our own child can bind the port only after :func:`unhold_ports`."""
    with _lock:
        if port in _held:
            return True
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            return False
        _held[port] = sock
        return True


def unhold_ports(ports: Iterable[int]) -> None:
    """Let go of ports held by :func:`hold_port` (right before the child that binds them starts)."""
    with _lock:
        for port in ports:
            sock = _held.pop(port, None)
            if sock is not None:
                sock.close()


def is_held(port: int) -> bool:
    with _lock:
        return port in _held


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def listens(pid: int | None, port: int) -> bool:
    """True when process ``pid`` (or one of its descendants) holds a listening TCP socket on
    ``port``: proof that whoever answers on that port is our child, not another program."""
    if pid is None:
        return False
    for process in _tree(pid):
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return True
    return False


def port_holders(port: int) -> list[str]:
    """``"PID 123 (name)"`` for every process listening on ``port`` that we may see (for error
    messages; empty when none, or when the OS does not tell)."""
    found: list[str] = []
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
                continue
            if conn.pid is None:
                found.append("a process we cannot see")
                continue
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            found.append(f"PID {conn.pid} ({name})")
    return sorted(set(found))


def describe_holders(port: int) -> str:
    """`` (held by PID 123 (python3))`` or an empty string."""
    holders = port_holders(port)
    return f" (held by {', '.join(holders)})" if holders else ""
