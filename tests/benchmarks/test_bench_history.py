"""The history benchmark's checks: days with keys of their own, and an analytics run that must have read them all."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.bench_history import HistoryNotRead, check_history_read, distinct_users
from include.emulator.local_lake import write_raw_day
from include.lake import manifest_key, partition_prefix, publication_key
from include.records import ENTITIES

DAYS = [date(2024, 7, 1), date(2024, 7, 2)]


def _keys(root: Path, entity: str, day: date) -> list[str]:
    manifest = json.loads((root / manifest_key(entity, day)).read_text())
    return [json.loads(line)["key"] for f in manifest["files"] for line in (root / f["key"]).read_text().splitlines()]


def _publish(root: Path, day: date, inputs: dict[str, list[date]], users_counted: list[int]) -> None:
    """What the analytics job leaves that the check reads: the publication and ``users_joined_by_year``."""
    published = root / publication_key(day)
    published.parent.mkdir(parents=True)
    published.write_text(json.dumps({"inputs": {e: {d.isoformat(): "x" for d in days} for e, days in inputs.items()}}))
    results = root / partition_prefix("analytics", "users_joined_by_year", day)
    results.mkdir(parents=True)
    years = pa.table({"post_year": [2015 + n for n in range(len(users_counted))], "number_users_joined": users_counted})
    pq.write_table(years, results / "part-0.parquet")


@pytest.fixture
def history(tmp_path: Path) -> Path:
    write_raw_day(tmp_path, DAYS[0], 300, repost_percent=20.0)
    write_raw_day(tmp_path, DAYS[1], 300, repost_percent=20.0, first_ind=300)
    return tmp_path


def test_days_written_from_their_own_first_key_share_none(history):
    for entity in ENTITIES:
        first, second = (set(_keys(history, entity, day)) for day in DAYS)
        assert first and second and not first & second, entity
    assert min(int(k) for k in _keys(history, "user", DAYS[1])) == 300


def test_the_distinct_users_are_those_of_the_raw_files(history):
    by_hand = {key for day in DAYS for key in _keys(history, "user", day)}
    assert len(by_hand) < 600  # the re-posts within each day count once

    assert distinct_users(history, DAYS) == len(by_hand)


def test_a_run_that_read_every_day_and_counted_each_user_once_passes(history):
    users = distinct_users(history, DAYS)
    _publish(history, DAYS[1], dict.fromkeys(ENTITIES, DAYS), [users - 7, 7])

    assert check_history_read(history, DAYS[1], DAYS) == users


def test_a_run_that_left_a_day_out_is_refused(history):
    users = distinct_users(history, DAYS)
    _publish(history, DAYS[1], {"pin": DAYS, "geo": DAYS[1:], "user": DAYS}, [users])

    with pytest.raises(HistoryNotRead, match=r"expected the days 2024-07-01\.\.2024-07-02"):
        check_history_read(history, DAYS[1], DAYS)


def test_a_run_that_miscounted_the_users_is_refused(history):
    users = distinct_users(history, DAYS)
    _publish(history, DAYS[1], dict.fromkeys(ENTITIES, DAYS), [users, 1])

    with pytest.raises(HistoryNotRead, match=f"counted {users + 1:,} users; the raw days hold {users:,}"):
        check_history_read(history, DAYS[1], DAYS)
