"""The suite's one API contract, ``docs/openapi.json``: the five services' OpenAPI documents
merged, as the gateway serves it at ``/openapi.json``.

    uv run python -m coursemesh.devstack.openapi            # print the merged document
    uv run python -m coursemesh.devstack.openapi --write    # regenerate docs/openapi.json
    uv run python -m coursemesh.devstack.openapi --check    # fail if it is out of date

Each service's app is built in-process (nothing is started: no database, NATS or lifespan is
needed to generate a document), from the same factory the stack runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coursemesh.chassis.openapi import merge_documents, service_document
from coursemesh.devstack.services import SERVICES, ServiceSpec

REGENERATE = "uv run python -m coursemesh.devstack.openapi --write"
DESCRIPTION = (
    "The HTTP contract of the whole coursemesh suite as clients reach it through the gateway: "
    "the catalog, commerce, learning, custom-gen and integrations services' documents merged "
    "(each is also served alone at `/openapi/<service>.json`). Guarded operations need "
    "`Authorization: Bearer <JWT>`; every refusal is `application/problem+json` with a stable "
    "`code`. Generated: regenerate with `" + REGENERATE + "`."
)


#: Settings a service refuses to start without, beyond the common ones: placeholders (nothing is
#: contacted while a document is generated).
PLACEHOLDER_SETTINGS: dict[str, dict[str, Any]] = {
    "commerce": {"sandbox_webhook_key": "openapi-document-placeholder"},
}


def default_path() -> Path:
    """``docs/openapi.json`` of the repository that holds this package (or the current one)."""
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in start.parents if start.is_file() else (start, *start.parents):
            if (parent / "deploy" / "gateway" / "Caddyfile").is_file():
                return parent / "docs" / "openapi.json"
    return Path.cwd() / "docs" / "openapi.json"


def service_openapi(spec: ServiceSpec) -> dict[str, Any]:
    """One service's document, from its app built with placeholder settings."""
    service_module = importlib.import_module(f"{spec.package}.service")
    main_module = importlib.import_module(f"{spec.package}.main")
    definition = service_module.SERVICE
    settings = definition.settings_type(
        database_url="postgresql+asyncpg://openapi@127.0.0.1:9/openapi",
        nats_url="nats://127.0.0.1:9",
        jwks_url="http://127.0.0.1:9/.well-known/jwks.json",
        log_level="WARNING",
        **PLACEHOLDER_SETTINGS.get(spec.name, {}),
    )
    app = main_module.create_app(settings)
    return service_document(app)


def merged_document(specs: Sequence[ServiceSpec] = SERVICES) -> dict[str, Any]:
    try:
        version = importlib.metadata.version("coursemesh-chassis")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    return merge_documents(
        {spec.name: service_openapi(spec) for spec in specs},
        title="coursemesh API",
        version=version,
        description=DESCRIPTION,
    )


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every operation of a document, as (METHOD, path template)."""
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    }


def operation_for(document: dict[str, Any], method: str, path: str) -> tuple[str, str] | None:
    """The operation of ``document`` that answers ``method path`` (a concrete path, no query),
    a literal segment winning over a parameter, as routers decide; None when there is none."""
    wanted = path.rstrip("/").split("/") or [""]
    best: tuple[int, tuple[str, str]] | None = None
    for candidate_method, template in operations(document):
        segments = template.rstrip("/").split("/")
        if candidate_method != method.upper() or len(segments) != len(wanted):
            continue
        parameters = 0
        for pattern, actual in zip(segments, wanted, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                parameters += 1
                if not actual:
                    break
            elif pattern != actual:
                break
        else:
            if best is None or parameters < best[0]:
                best = (parameters, (candidate_method, template))
    return None if best is None else best[1]


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursemesh.devstack.openapi")
    parser.add_argument("--write", action="store_true", help="write the document to --path")
    parser.add_argument("--check", action="store_true", help="fail if --path is out of date")
    parser.add_argument("--path", type=Path, default=None, help="default: docs/openapi.json")
    args = parser.parse_args(argv)
    path: Path = args.path or default_path()
    text = dumps(merged_document())
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
        return 0
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date; run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
