"""Container healthcheck: ``healthcheck.py URL [FIELD=VALUE ...]`` exits 0 when URL answers 200.

Each ``FIELD=VALUE`` (a dotted path into the JSON body, e.g. ``metadatabase.status=healthy``) must also hold. A part
``LIST[KEY=VALUE]`` of the path selects the elements of a list whose KEY is VALUE, and the rest of the path applies to
each of them: ``workers[host=spark-worker].state=ALIVE`` holds when one of the workers of that host is ALIVE.
Standard library only, so it runs in any Python image without curl.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from typing import Any

_PART = r"[^.\[\]=]+(?:\[[^.\[\]=]+=[^\]]*\])?"
_EXPECTATION = re.compile(rf"(?P<path>{_PART}(?:\.{_PART})*)=(?P<wanted>.*)")
_SELECTOR = re.compile(r"(?P<name>[^.\[\]=]+)(?:\[(?P<key>[^.\[\]=]+)=(?P<value>[^\]]*)\])?")


def values(document: Any, path: str) -> list[Any]:
    """The values at a dotted ``path`` of a JSON document: none when absent, several through a list selection."""
    found = [document]
    for part in _SELECTOR.finditer(path):
        found = [node[part["name"]] for node in found if isinstance(node, dict) and part["name"] in node]
        if part["key"] is not None:
            found = [
                item
                for node in found
                if isinstance(node, list)
                for item in node
                if isinstance(item, dict) and str(item.get(part["key"])) == part["value"]
            ]
    return found


def failed_expectations(document: Any, expectations: list[str]) -> list[str]:
    """The ``FIELD=VALUE`` expectations the document does not meet, each with what was found."""
    failures = []
    for expectation in expectations:
        match = _EXPECTATION.fullmatch(expectation)
        if match is None:
            raise SystemExit(f"expected FIELD=VALUE, got {expectation!r}")
        found = values(document, match["path"])
        if match["wanted"] not in [str(value) for value in found]:
            failures.append(f"{match['path']}: found {found!r}, wanted {match['wanted']!r}")
    return failures


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    url, expectations = argv[0], argv[1:]
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1
    if not expectations:
        return 0
    try:
        document = json.loads(body)
    except ValueError:
        print(f"{url}: the answer is not JSON", file=sys.stderr)
        return 1
    failures = failed_expectations(document, expectations)
    for failure in failures:
        print(f"{url}: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
