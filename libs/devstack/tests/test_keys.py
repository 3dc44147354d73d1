"""The development identity: ``coursemesh token`` prints a JWT that verifies against jwks.json."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from coursemesh.devstack.cli import app
from coursemesh.devstack.keys import DevIdentity, mint_token, verify_token


def test_token_command_output_verifies_against_jwks(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["token", "--sub", "user_1", "--email", "a@b.c", "--name", "Ann", "--ttl", "120",
         "--data-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    jwks = json.loads((tmp_path / "keys" / "jwks.json").read_text())
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == jwks["keys"][0]["kid"]
    claims = verify_token(token, jwks)
    assert claims["sub"] == "user_1"
    assert claims["email"] == "a@b.c"
    assert claims["name"] == "Ann"
    assert claims["iss"] == "coursemesh-dev"
    assert claims["exp"] - claims["iat"] == 120
    # the same check a service does with PyJWKClient-style key lookup
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]].key
    assert jwt.decode(token, key, algorithms=["RS256"], issuer="coursemesh-dev")["sub"] == "user_1"


def test_keys_are_generated_once_and_private_key_is_private(tmp_path: Path) -> None:
    identity = DevIdentity.for_data_dir(tmp_path).ensure()
    kid = identity.kid
    assert identity.private_key_path.stat().st_mode & 0o077 == 0
    assert DevIdentity.for_data_dir(tmp_path).ensure().kid == kid
    token = mint_token("u2", data_dir=tmp_path)
    assert verify_token(token, identity.jwks())["sub"] == "u2"


def test_expired_or_foreign_tokens_are_rejected(tmp_path: Path) -> None:
    ours = DevIdentity.for_data_dir(tmp_path / "a").ensure()
    theirs = DevIdentity.for_data_dir(tmp_path / "b").ensure()
    with pytest.raises(jwt.InvalidTokenError):
        verify_token(theirs.mint_token("u"), ours.jwks())
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_token(ours.mint_token("u", ttl=1, extra_claims={"exp": 1}), ours.jwks())
