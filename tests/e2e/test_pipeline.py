"""End to end on the real stack: emulator -> API -> Kafka -> DAG run by the scheduler -> clean and analytics in MinIO.

Expected figures are computed here with pandas from the records the test posted, not with the code under test.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

from devstack.airflow_client import AirflowClient
from include import lake
from include.emulator.generate import Triple, generate_triples
from include.emulator.post import post_triples
from include.records import ENTITIES
from tests.api_process import running_api
from tests.waiting import DAY_END_TIMEOUT_S, clear_of_midnight_utc

DAG_ID = "pinterest_daily"
TRIPLES = 120
ANALYTICS = (
    "popular_category_by_country", "popular_category_by_year", "top_poster_by_country",
    "top_country_by_follower_count", "popular_category_by_age_group", "median_followers_by_age_group",
    "users_joined_by_year", "median_followers_by_join_year", "median_followers_by_age_group_and_join_year",
)  # fmt: skip


def _read_parquet_prefix(s3, bucket: str, prefix: str) -> pd.DataFrame:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            if o["Key"].endswith(".parquet")]  # fmt: skip
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    return pd.concat([t.to_pandas() for t in tables], ignore_index=True) if tables else pd.DataFrame()


@pytest.fixture
def posted(stack_env, kafka_topics, tmp_path) -> Iterator[tuple[list[Triple], datetime]]:
    """Post TRIPLES triples (repeats included) through an API producing to the test's topics."""
    with running_api(stack_env, kafka_topics, tmp_path / "api.log") as url:
        triples = list(generate_triples(seed=4242, count=TRIPLES, repeat_percent=10.0))
        clear_of_midnight_utc()  # posted and drained while the day is still open
        day = datetime.now(UTC).date()
        summary = asyncio.run(post_triples(url, iter(triples), concurrency=8))
        assert (summary.accepted, summary.rejected, summary.errors) == (TRIPLES * 3, 0, 0), summary.statuses
        if datetime.now(UTC).date() != day:
            pytest.fail("posting crossed midnight UTC; run the test again")
        yield triples, datetime.combine(day, time(), tzinfo=UTC)


@pytest.mark.timeout(DAY_END_TIMEOUT_S)
def test_posted_records_reach_clean_and_analytics(stack_env, s3, kafka_topics, scratch_bucket, posted):
    triples, start = posted
    client = AirflowClient.from_env(stack_env)
    client.wait_for_dag(DAG_ID)
    client.unpause(DAG_ID)
    run_id = client.trigger(DAG_ID, start, start + timedelta(days=1),
                            conf={"topic_prefix": kafka_topics, "lake_bucket": scratch_bucket})  # fmt: skip
    client.wait_for_run(DAG_ID, run_id, timeout=1200)
    day = start.date()

    # Raw: every posted record, repeats included, in the files the manifest of an open (partial) day lists.
    for entity in ENTITIES:
        manifest = json.loads(s3.get_object(Bucket=scratch_bucket, Key=lake.manifest_key(entity, day))["Body"].read())
        assert manifest["status"] == "partial"
        lines = [
            json.loads(line)
            for f in manifest["files"]
            for line in s3.get_object(Bucket=scratch_bucket, Key=f["key"])["Body"].read().splitlines()
        ]
        posted_values = [getattr(t, entity).model_dump(mode="json", exclude_none=True) for t in triples]
        assert sorted(json.dumps(line["value"], sort_keys=True) for line in lines) == sorted(
            json.dumps(value, sort_keys=True) for value in posted_values
        ), entity

    # Clean: one row per distinct record key.
    pins = pd.DataFrame([t.pin.model_dump(mode="json") for t in triples]).rename(columns={"index": "ind"})
    pins = pins.drop_duplicates("unique_id")
    geos = pd.DataFrame([t.geo.model_dump(mode="json") for t in triples]).drop_duplicates("ind")
    users = pd.DataFrame([t.user.model_dump(mode="json") for t in triples]).drop_duplicates("ind")
    for entity, expected in (("pin", pins), ("geo", geos), ("user", users)):
        clean = _read_parquet_prefix(s3, scratch_bucket, lake.partition_prefix("clean", entity, day))
        assert len(clean) == len(expected), entity
    clean_pins = _read_parquet_prefix(s3, scratch_bucket, lake.partition_prefix("clean", "pin", day))
    assert sorted(clean_pins["unique_id"]) == sorted(pins["unique_id"])

    # Analytics: all nine results written; two checked row by row against pandas.
    results = {
        name: _read_parquet_prefix(s3, scratch_bucket, lake.partition_prefix("analytics", name, day))
        for name in ANALYTICS
    }
    assert all(len(df) > 0 for df in results.values()), {n: len(df) for n, df in results.items()}

    joined_years = pd.to_datetime(users["date_joined"], format="mixed", utc=True).dt.year  # no offset: UTC
    expected_joined = joined_years.value_counts().sort_index()
    got_joined = results["users_joined_by_year"].set_index("post_year")["number_users_joined"].sort_index()
    assert {int(k): int(v) for k, v in got_joined.items()} == {int(k): int(v) for k, v in expected_joined.items()}

    counts = (pins[["ind", "category"]].merge(geos[["ind", "country"]], on="ind")
              .groupby(["country", "category"]).size().rename("category_count").reset_index())  # fmt: skip
    counts = counts.sort_values(["country", "category_count", "category"], ascending=[True, False, True])
    expected_top = counts.drop_duplicates("country").set_index("country")
    got_top = results["popular_category_by_country"].set_index("country").sort_index()
    assert got_top["category"].to_dict() == expected_top["category"].to_dict()
    assert {k: int(v) for k, v in got_top["category_count"].items()} == {
        k: int(v) for k, v in expected_top["category_count"].items()
    }
