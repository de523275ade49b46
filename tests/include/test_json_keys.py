"""The check that proves a JSON text names no key twice, against a parse that counts every key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from include.json_keys import DuplicateKeyError, keys_counted_once, refuse_duplicate_keys


def _keys_and_doubles(text: bytes) -> tuple[int, bool]:
    """Distinct keys per object summed over the JSON values in ``text`` (one per line), and whether one is doubled."""
    doubled = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal doubled
        doubled |= len({name for name, _ in items}) < len(items)
        return dict(items)

    distinct = 0
    for line in text.split(b"\n"):
        value = json.loads(line, object_pairs_hook=pairs)
        distinct += len(value) if isinstance(value, dict) else 0
    return distinct, doubled


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        (b'{"a":1,"b":"x"}', 2, True),
        (b'{"a":1,"b":"x"}', 3, False),  # the count must be exact
        (b'{"a":1,"a":2}', 1, False),  # a doubled key counts twice
        (b'{"a" :1,"a":2}', 1, False),  # a blank before the colon hides one key from the count
        (b'{"a":1,\t"a"\t:2}', 1, False),
        (b'{"a":"x\\" :y"}', 1, False),  # a quote and a blank inside a string: not provable
        (b'{"a":"say \\"hi\\":"}', 1, False),  # '":' inside a string counts once more
        (b'{"a":1}\n{"b":2}', 2, True),  # a batch (one value per line)
        (b"", 0, True),
        (b'"', 0, True),
    ],
)
def test_known_texts(text, fields, expected):
    assert keys_counted_once(text, fields) is expected


_KEYS = st.sampled_from(["a", "b", "index", 'q"', "x:", 'e" :'])
_VALUES = st.one_of(st.integers(), st.text(max_size=8), st.sampled_from(['"', '":', '" ', "\t", ":"]), st.none())


@st.composite
def _objects(draw: st.DrawFn) -> bytes:
    """One JSON object as text, perhaps naming a key twice, with random blanks around its colons and commas."""
    members = draw(st.lists(st.tuples(_KEYS, _VALUES), max_size=5))
    blank = st.sampled_from(["", " ", "\t", "\r", "  "])
    parts = [f"{json.dumps(k)}{draw(blank)}:{draw(blank)}{json.dumps(v)}" for k, v in members]
    return ("{" + f",{draw(blank)}".join(parts) + "}").encode()


@settings(max_examples=2000, deadline=None)
@given(texts=st.lists(_objects(), min_size=1, max_size=4))
def test_a_text_proven_once_has_no_doubled_key(texts):
    text = b"\n".join(texts)
    distinct, doubled = _keys_and_doubles(text)
    if keys_counted_once(text, distinct):
        assert not doubled, text


def test_compact_records_without_quotes_in_strings_are_proven():
    """The drain's fast path depends on this: the API's own compact JSON passes without a parse."""
    text = b"".join(json.dumps({"a": i, "b": "x y", "c": None}, separators=(",", ":")).encode() for i in range(100))
    assert keys_counted_once(text, 300)


class _One(BaseModel):
    a: Any


def test_refuse_duplicate_keys_parses_when_the_check_cannot_prove_it():
    doubled, once = b'{"a" :1, "a":2}', b'{"a" : "x"}'
    with pytest.raises(DuplicateKeyError, match="'a' appears twice"):
        refuse_duplicate_keys(doubled, _One.model_validate_json(doubled))
    refuse_duplicate_keys(once, _One.model_validate_json(once))
