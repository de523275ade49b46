"""Container healthcheck: ``healthcheck.py URL [FIELD=VALUE ...]`` exits 0 when URL answers 200.

Each ``FIELD=VALUE`` (a dotted path into the JSON body, e.g. ``metadatabase.status=healthy``) must also hold.
Standard library only, so it runs in any Python image without curl.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any


def field(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` of a JSON document, or None when absent."""
    for part in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


def failed_expectations(document: Any, expectations: list[str]) -> list[str]:
    """The ``FIELD=VALUE`` expectations the document does not meet, each with what was found."""
    failures = []
    for expectation in expectations:
        path, sep, wanted = expectation.partition("=")
        if not sep:
            raise SystemExit(f"expected FIELD=VALUE, got {expectation!r}")
        found = field(document, path)
        if str(found) != wanted:
            failures.append(f"{path}={found!r}, wanted {wanted!r}")
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
