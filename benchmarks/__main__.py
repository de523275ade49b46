"""`make bench`: run every benchmark against the local stack, print one table, write the figures to JSON.

Usage: python -m benchmarks [--scale 1.0] [--only api,drain,spark] [--out FILE]

The figures go to ``bench-results/latest.json`` after a run of every benchmark, and to
``bench-results/latest-<names>.json`` after a run of some (``--only``), so a partial run never replaces them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.results import Result

BENCHES = ("api", "drain", "spark")


def _table(results: list[Result]) -> str:
    rows = [("bench", "measure", "value", "unit", "note")]
    rows += [(r.bench, r.name, f"{r.value:,.2f}", r.unit, r.note) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload (1.0 = issue sizes)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--out", type=Path, help="JSON file for the figures (default: see above)")
    args = parser.parse_args(argv)
    names = args.only.split(",")
    if unknown := sorted(set(names) - set(BENCHES)):
        parser.error(f"unknown benchmarks {unknown}; choose among {', '.join(BENCHES)}")
    out = args.out or Path("bench-results") / (
        "latest.json" if set(names) == set(BENCHES) else f"latest-{'-'.join(names)}.json"
    )

    results: list[Result] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.monotonic()
        print(f"==> bench {name} (scale {args.scale})", flush=True)
        results += module.run(scale=args.scale)
        print(f"    done in {time.monotonic() - started:.1f}s", flush=True)

    print(_table(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scale": args.scale,
        "results": [r.as_dict() for r in results],
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
