"""``python -m bench [name ...] [-- options]``: run benchmarks (all by default).

Options after the names go to a single named benchmark: ``python -m bench event_hop --rate 100``.
``chaos`` (the kill -9 drill, minutes per run) runs only when named: ``python -m bench chaos``.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "chaos",
    "consistency",
    "deliveries",
    "event_hop",
    "http",
    "learning_scale",
    "makeup",
    "sync",
    "webhooks",
]
#: What ``python -m bench`` (``make bench``) runs without names: every benchmark but the drill.
DEFAULT = [name for name in BENCHMARKS if name != "chaos"]


def main(argv: list[str]) -> int:
    names: list[str] = []
    while argv and not argv[0].startswith("-"):
        names.append(argv.pop(0))
    options = [a for a in argv if a != "--"]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}", file=sys.stderr)
        return 2
    if options and len(names) != 1:
        print("options need exactly one benchmark name", file=sys.stderr)
        return 2
    for name in names or DEFAULT:
        print(f"== {name}", file=sys.stderr)
        rc = importlib.import_module(f"bench.{name}").main(options)
        if rc:
            return int(rc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
