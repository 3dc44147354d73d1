"""Development identity for the compose stack (never used in production, which uses Clerk).

Runs inside a coursemesh service image (it has ``cryptography`` and ``pyjwt``), as the compose
services ``dev-keys`` (creates the key pair once) and, on demand, to mint tokens::

    docker compose run --rm dev-keys token --sub user_1 --email ann@example.com --name Ann

Layout as in ``coursemesh.devstack.keys``: ``<dir>/private.pem`` and ``<dir>/jwks.json``; the
gateway serves the JWKS at ``/.well-known/jwks.json`` (its ``JWKS_DIR``) and the services read
it through ``<PREFIX>JWKS_URL``. Tokens are RS256 with issuer ``coursemesh-dev``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ISSUER = "coursemesh-dev"
ALGORITHM = "RS256"


def _kid(public_der: bytes) -> str:
    digest = hashlib.sha256(public_der).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def ensure(keys_dir: Path) -> None:
    """Create the key pair and the JWKS unless both exist."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    private_path, jwks_path = keys_dir / "private.pem", keys_dir / "jwks.json"
    if private_path.exists() and jwks_path.exists():
        print(f"dev identity present in {keys_dir}", file=sys.stderr)
        return
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = private_path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.replace(private_path)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": _kid(der), "use": "sig", "alg": ALGORITHM})
    tmp = jwks_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [jwk]}, indent=2))
    tmp.chmod(0o644)
    tmp.replace(jwks_path)
    print(f"dev identity created in {keys_dir}", file=sys.stderr)


def token(keys_dir: Path, sub: str, email: str | None, name: str | None, ttl: int) -> str:
    """An RS256 token for ``sub`` signed with the development key."""
    import jwt

    ensure(keys_dir)
    jwks = json.loads((keys_dir / "jwks.json").read_text())
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": ISSUER,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    if email is not None:
        claims["email"] = email
    if name is not None:
        claims["name"] = name
    return jwt.encode(
        claims,
        (keys_dir / "private.pem").read_bytes(),
        algorithm=ALGORITHM,
        headers={"kid": jwks["keys"][0]["kid"]},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("KEYS_DIR", "/keys")))
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("ensure", help="create the key pair and JWKS once")
    mint = commands.add_parser("token", help="print a token")
    mint.add_argument("--sub", required=True)
    mint.add_argument("--email")
    mint.add_argument("--name")
    mint.add_argument("--ttl", type=int, default=3600)
    args = parser.parse_args(argv)
    if args.command == "token":
        print(token(args.dir, args.sub, args.email, args.name, args.ttl))
    else:
        ensure(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
