"""``python -m coursemesh.chassis.migrate <service>``: migrate one service's schema to head.

Idempotent and safe to run from every pod at once (an advisory lock serialises the runners),
so it runs as an initContainer of each service Deployment. On a database already ahead of this
code (a rollback) it changes nothing and succeeds when every newer revision is recorded as
compatible with the previous code; it fails (exit 1) when one is a contract migration.
"""

from __future__ import annotations

import asyncio
import os
import sys

from coursemesh.chassis.migrations import MigrationRefused, upgrade_head
from coursemesh.chassis.service import load_definition


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m coursemesh.chassis.migrate <service>", file=sys.stderr)
        return 2
    definition = load_definition(args[0])
    variable = f"{definition.env_prefix}DATABASE_URL"
    database_url = os.environ.get(variable)
    if not database_url:
        print(f"invalid configuration:\n  {variable} is required", file=sys.stderr)
        return 2
    try:
        verdict = asyncio.run(upgrade_head(definition, database_url))
    except MigrationRefused as exc:
        print(f"migration refused: {exc}", file=sys.stderr)
        return 1
    print(f"{definition.name}: schema {definition.schema} {verdict.message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
