"""``python -m coursemesh.chassis.migrate <service>``: migrate one service's schema to head."""

from __future__ import annotations

import asyncio
import os
import sys

from coursemesh.chassis.migrations import head_revision, upgrade_head
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
    asyncio.run(upgrade_head(definition, database_url))
    print(f"{definition.name}: schema {definition.schema} at {head_revision(definition)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
