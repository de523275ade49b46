"""`make bench`: run every benchmark against the local stack, print one table, write the figures to JSON.

Usage: python -m benchmarks [--scale 1.0] [--only api,drain,spark,history] [--out FILE]

``bench-results/latest.json`` holds the latest full run: every benchmark at scale 1.0. Any other run (``--only``,
another ``--scale``) goes to ``bench-results/latest-<names>[-scale<s>].json``, so a partial or scaled-down run never
replaces it. Each run also leaves a copy under ``bench-results/runs/<UTC time>-<names>-scale<s>.json``. With
``--out`` the figures go to that file only. Every file records the commit (and whether the tree was dirty), the
versions measured, the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import provenance
from benchmarks.results import Result

BENCHES = ("api", "drain", "spark", "history")
RESULTS = Path("bench-results")


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


def result_files(names: list[str], scale: float, started: datetime) -> list[Path]:
    """Where a run's figures go without ``--out``: the ``latest`` file of its kind, and a timestamped copy."""
    chosen = "-".join(b for b in BENCHES if b in names)
    full = chosen == "-".join(BENCHES) and scale == 1.0
    latest = "latest.json" if full else f"latest-{chosen}{'' if scale == 1.0 else f'-scale{scale:g}'}.json"
    kind = f"{chosen}-scale{scale:g}"
    return [RESULTS / latest, RESULTS / "runs" / f"{started:%Y%m%dT%H%M%SZ}-{kind}.json"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload (1.0 = issue sizes)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ", ".join(BENCHES))
    parser.add_argument("--out", type=Path, help="JSON file for the figures (default: see above)")
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.only.split(",")))
    if unknown := sorted(set(names) - set(BENCHES)):
        parser.error(f"unknown benchmarks {unknown}; choose among {', '.join(BENCHES)}")

    started_at, load_before = datetime.now(UTC), provenance.load_average()
    context = {"code": provenance.code(), "versions": provenance.versions(), "machine": provenance.machine()}
    results: list[Result] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.monotonic()
        print(f"==> bench {name} (scale {args.scale})", flush=True)
        results += module.run(scale=args.scale)
        print(f"    done in {time.monotonic() - started:.1f}s", flush=True)

    print(_table(results))
    report = {
        "when": started_at.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        **context,
        "load_average": {"before": load_before, "after": provenance.load_average()},
        "benches": names,
        "scale": args.scale,
        "results": [r.as_dict() for r in results],
    }
    for out in [args.out] if args.out else result_files(names, args.scale, started_at):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"figures written to {out}")


if __name__ == "__main__":
    main()
