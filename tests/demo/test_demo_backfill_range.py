"""Where `make demo` starts its backfill in a lake left by earlier runs (real MinIO, a scratch bucket)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from demo.__main__ import first_day_to_backfill
from include import lake
from include.records import ENTITIES

SEEDED_FROM = date(2026, 11, 23)


def put_day(s3, bucket: str, day: date, status: str = "complete", entities=ENTITIES, **extra) -> None:
    for entity in entities:
        body = {"status": status, "files": [], **extra}
        s3.put_object(Bucket=bucket, Key=lake.manifest_key(entity, day), Body=json.dumps(body).encode())


def test_an_empty_lake_starts_at_the_seeded_days(s3, scratch_bucket):
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == SEEDED_FROM


def test_a_lake_complete_up_to_the_seeded_days_starts_there(s3, scratch_bucket):
    for back in range(1, 4):
        put_day(s3, scratch_bucket, SEEDED_FROM - timedelta(days=back))
    put_day(s3, scratch_bucket, SEEDED_FROM - timedelta(days=2), "partial", accepted_partial={"run_id": "ops"})
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == SEEDED_FROM


def test_a_gap_or_a_partial_day_since_the_first_drained_day_is_backfilled_too(s3, scratch_bucket):
    put_day(s3, scratch_bucket, date(2026, 11, 12))
    put_day(s3, scratch_bucket, date(2026, 11, 13))
    put_day(s3, scratch_bucket, date(2026, 11, 14), entities=("pin", "user"))  # geo never drained
    put_day(s3, scratch_bucket, date(2026, 11, 16), "partial")
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 14)

    put_day(s3, scratch_bucket, date(2026, 11, 14), entities=("geo",))
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 15)  # never drained at all
