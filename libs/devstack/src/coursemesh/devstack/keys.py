"""The development identity: one RSA key pair under ``<data>/keys/`` and RS256 tokens; and the
sandbox payment provider's webhook key.

``<data>/keys/private.pem`` holds the private key (PKCS#8, mode 0600),
``<data>/keys/jwks.json`` the public JWKS the gateway serves at ``/.well-known/jwks.json`` and
``<data>/keys/sandbox-webhook.key`` commerce's ``SANDBOX_WEBHOOK_KEY`` and
``<data>/keys/reminders.key`` learning's ``REMINDER_KEY`` (mode 0600).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursemesh.devstack.services import JWT_ISSUER

ALGORITHM = "RS256"
SANDBOX_WEBHOOK_KEY_FILE = "sandbox-webhook.key"
REMINDER_KEY_FILE = "reminders.key"


def _kid(public_der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()[:12]).decode().rstrip("=")


@functools.lru_cache(maxsize=8)
def _signing_key(private_key_path: Path, modified_ns: int) -> Any:
    """The parsed private key, parsed once per file version: loading and checking an RSA key
    costs many times what signing with a loaded one does."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(private_key_path.read_bytes(), password=None)


@dataclass(frozen=True)
class DevIdentity:
    """The key pair in ``keys_dir``; :meth:`ensure` creates it on first use."""

    keys_dir: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path | str) -> DevIdentity:
        return cls(Path(data_dir) / "keys")

    @property
    def private_key_path(self) -> Path:
        return self.keys_dir / "private.pem"

    @property
    def jwks_path(self) -> Path:
        return self.keys_dir / "jwks.json"

    def ensure(self) -> DevIdentity:
        """Generate the key pair and JWKS unless they exist."""
        if self.private_key_path.exists() and self.jwks_path.exists():
            return self
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.keys_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = self.private_key_path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(self.private_key_path)
        self._write_jwks(key.public_key())
        return self

    def _write_jwks(self, public_key: Any) -> None:
        from cryptography.hazmat.primitives import serialization
        from jwt.algorithms import RSAAlgorithm

        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        jwk.update({"kid": _kid(der), "use": "sig", "alg": ALGORITHM})
        tmp = self.jwks_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": [jwk]}, indent=2))
        tmp.replace(self.jwks_path)

    def jwks(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ensure().jwks_path.read_text())
        return data

    @property
    def kid(self) -> str:
        return str(self.jwks()["keys"][0]["kid"])

    def mint_token(
        self,
        sub: str,
        email: str | None = None,
        name: str | None = None,
        ttl: int = 3600,
        issuer: str = JWT_ISSUER,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        """An RS256 JWT for ``sub`` with a ``kid`` header, valid for ``ttl`` seconds."""
        import jwt

        self.ensure()
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": issuer,
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if email is not None:
            claims["email"] = email
        if name is not None:
            claims["name"] = name
        claims.update(extra_claims or {})
        path = self.private_key_path
        return jwt.encode(
            claims,
            _signing_key(path, path.stat().st_mtime_ns),
            algorithm=ALGORITHM,
            headers={"kid": self.kid},
        )


def mint_token(
    sub: str,
    email: str | None = None,
    name: str | None = None,
    ttl: int = 3600,
    issuer: str = JWT_ISSUER,
    *,
    data_dir: Path | str = ".data",
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """An RS256 JWT signed by the development key pair of ``data_dir`` (created if missing)."""
    return DevIdentity.for_data_dir(data_dir).mint_token(
        sub, email=email, name=name, ttl=ttl, issuer=issuer, extra_claims=extra_claims
    )


def sandbox_webhook_key(data_dir: Path | str) -> str:
    """The data dir's sandbox webhook key: random, made on first use and kept, so the webhook
    secrets of a development stack stay the same across restarts and are known to nobody else."""
    return _kept_key(Path(data_dir) / "keys" / SANDBOX_WEBHOOK_KEY_FILE)


def reminder_key(data_dir: Path | str) -> str:
    """The data dir's key for learning's unsubscribe links (kept: mailed links keep working
    across restarts)."""
    return _kept_key(Path(data_dir) / "keys" / REMINDER_KEY_FILE)


def _kept_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        # Created 0600 (never readable by others, not even for a moment), then linked into
        # place: if another process made the key first, its key is kept and this one dropped.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def verify_token(token: str, jwks: dict[str, Any], issuer: str = JWT_ISSUER) -> dict[str, Any]:
    """Decode ``token`` against ``jwks`` (by ``kid``); raises ``jwt.InvalidTokenError``."""
    import jwt

    kid = jwt.get_unverified_header(token).get("kid")
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == kid:
            key = jwt.PyJWK(jwk).key
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], issuer=issuer, options={"require": ["exp"]}
            )
            return claims
    raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the JWKS")
