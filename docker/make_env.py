"""Write the `.env` file docker-compose.yaml needs, with fresh random secrets: ``python3 docker/make_env.py``.

Values already in the file are kept, and so are its other lines, comments and quoting (run it again after an upgrade
to add new ones). It fills in a required value that is missing or empty, and replaces one that is unusable: the
comment of a ``KEY=   # comment`` line (Docker Compose reads the comment as the value when nothing precedes it), or
an Airflow signing key shorter than HS512 needs. The file is readable by its owner only. Standard library only: it
runs with any Python 3 on the host.

The file is read as Docker Compose reads an env file (https://docs.docker.com/compose/env-file/): ``#`` lines and
blank lines are skipped, ``export`` is allowed, an unquoted value ends at `` #`` (a space, then ``#``) and loses its
surrounding blanks, a quoted value is what lies between its quotes (``\\``-escapes of the quote undone). Interpolation
(``$VAR``) is not performed: the generated values contain no ``$``.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / ".env"
HEADER = "# Secrets for docker-compose.yaml (python3 docker/make_env.py). Never commit this file.\n"

# The ${VAR:?} variables of docker-compose.yaml and how to make a value for each (URL-safe: no quoting needed).
GENERATORS: dict[str, Callable[[], str]] = {
    "MINIO_ROOT_USER": lambda: "lake-" + secrets.token_hex(4),
    "MINIO_ROOT_PASSWORD": lambda: secrets.token_urlsafe(24),
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
    "AIRFLOW_PASSWORD": lambda: secrets.token_urlsafe(18),
    # HS512 keys (execution API tokens; signed log requests between Airflow processes): PyJWT warns
    # (InsecureKeyLengthWarning) on every token below 64 bytes, the size of a SHA-512 digest.
    "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(64),
    "AIRFLOW_API_SECRET_KEY": lambda: secrets.token_urlsafe(64),
    "AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
}

# Shortest acceptable value (characters, i.e. bytes of the ASCII key), where there is one.
MIN_LENGTH: dict[str, int] = {"AIRFLOW_JWT_SECRET": 64, "AIRFLOW_API_SECRET_KEY": 64}

_ASSIGNMENT = re.compile(r"[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*(?P<rest>.*)")
_DOUBLE_QUOTE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}


def split_value(rest: str) -> tuple[str, str]:
    """``(value, what follows it)`` as Docker Compose reads what follows ``KEY=`` (leading blanks removed).

    ValueError for an unterminated quoted value.
    """
    if rest[:1] not in ("'", '"'):
        value, sep, comment = rest.partition(" #")
        return value.rstrip(), sep.lstrip() + comment
    quote, chars, escaped = rest[0], [], False
    for index, char in enumerate(rest[1:], start=1):
        if escaped:
            escaped = False
            if char == quote or (quote == '"' and char in _DOUBLE_QUOTE_ESCAPES):
                chars.append(_DOUBLE_QUOTE_ESCAPES.get(char, char) if quote == '"' else char)
            else:
                chars.append("\\" + char)
        elif char == "\\":
            escaped = True
        elif char == quote:
            return "".join(chars), rest[index + 1 :].strip()
        else:
            chars.append(char)
    raise ValueError(f"unterminated quoted value {rest!r} (values spanning lines are not supported here)")


def parse_line(line: str) -> tuple[str, str] | None:
    """``(key, value)`` of an env file line as Docker Compose reads it; None for a comment, a blank or other line."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    match = _ASSIGNMENT.fullmatch(line)
    if match is None:
        return None
    return match["key"], split_value(match["rest"])[0]


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` pairs of an env file's text (the last assignment of a key wins, as in Compose)."""
    pairs = (parse_line(line) for line in text.splitlines())
    return dict(pair for pair in pairs if pair is not None)


def commented_keys(text: str) -> set[str]:
    """Keys of ``KEY=   # comment`` lines: an unquoted value that starts with ``#`` is a comment meant as no value
    (a quoted one, ``KEY="#…"``, is a real value)."""
    matches = (_ASSIGNMENT.fullmatch(line) for line in text.splitlines() if parse_line(line) is not None)
    return {m["key"] for m in matches if m is not None and m["rest"].startswith("#")}


def problem(name: str, value: str | None, commented: bool = False) -> str | None:
    """Why ``value`` cannot serve as the required variable ``name`` (None when it can); ``commented``: its line
    was ``KEY=   # comment`` (see ``commented_keys``)."""
    if not value:
        return "missing"
    if commented:
        return "its value was the comment text"
    if len(value) < MIN_LENGTH.get(name, 0):
        return f"shorter than {MIN_LENGTH[name]} characters"
    return None


def complete_env(current: dict[str, str], commented: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """``current`` plus a new value for every required variable it lacks or cannot use (see ``problem``)."""
    unusable = [name for name in GENERATORS if problem(name, current.get(name), name in commented)]
    return {**current, **{name: GENERATORS[name]() for name in unusable}}


def updated_text(text: str, values: dict[str, str]) -> str:
    """``text`` (an env file) with ``values`` set: an assignment already there is rewritten in place, keeping its
    comment (moved after the value); the others are appended. The other lines are kept as they are."""
    lines, done = [], set()
    for line in text.splitlines():
        match = _ASSIGNMENT.fullmatch(line) if parse_line(line) is not None else None
        if match is not None and match["key"] in values:
            key, rest = match["key"], match["rest"]
            # a "value" starting with # is the comment of a KEY=   # comment line
            comment = rest if rest.startswith("#") else split_value(rest)[1]
            line = f"{key}={values[key]}" + (f"  {comment}" if comment.startswith("#") else "")
            done.add(key)
        lines.append(line)
    lines += [f"{key}={value}" for key, value in values.items() if key not in done]
    return "".join(f"{line}\n" for line in lines)


def write_env(path: Path, values: dict[str, str]) -> None:
    """Set ``values`` in the env file ``path`` (created when missing), atomically, mode 600."""
    text = path.read_text() if path.exists() else HEADER
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(updated_text(text, values))
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help=f"the env file (default {DEFAULT_PATH})")
    path = parser.parse_args().path
    text = path.read_text() if path.exists() else ""
    try:
        current = parse_env(text)
    except ValueError as exc:
        raise SystemExit(f"{path}: {exc}") from None
    commented = commented_keys(text)
    completed = complete_env(current, commented)
    changed = {name: value for name, value in completed.items() if current.get(name) != value}
    if changed:
        write_env(path, changed)
    reasons = [f"{name} ({problem(name, current.get(name), name in commented)})" for name in changed]
    print(f"{path}: {'set ' + ', '.join(reasons) if reasons else 'already complete'}")


if __name__ == "__main__":
    main()
