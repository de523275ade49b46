"""Assets per bucket: downstream DAGs schedule on the default bucket's names, other buckets' are named by URI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from include.settings import platform_settings
from plugins.lake_assets import lake_alias, lake_asset
from plugins.lake_spark import ANALYTICS_JOB, CLEAN_JOB, LakeSparkSubmitOperator


@pytest.fixture
def default_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LAKE_BUCKET", "the-lake")
    platform_settings.cache_clear()
    yield "the-lake"
    platform_settings.cache_clear()


def test_the_default_buckets_assets_keep_the_names_downstream_dags_schedule_on(default_bucket: str) -> None:
    named = {
        (a.name, a.uri) for a in (lake_asset(default_bucket, "raw", "pin"), lake_asset(default_bucket, "analytics"))
    }
    assert named == {("pinterest_raw_pin", "s3://the-lake/raw/pin"), ("pinterest_analytics", "s3://the-lake/analytics")}


def test_another_buckets_assets_are_named_by_their_uri(default_bucket: str) -> None:
    asset = lake_asset("scratch", "clean", "geo")
    assert (asset.name, asset.uri) == ("s3://scratch/clean/geo", "s3://scratch/clean/geo")


def test_the_operator_declares_its_alias_and_the_datasets_its_job_writes(default_bucket: str) -> None:
    alias = lake_alias("clean")
    clean = LakeSparkSubmitOperator(task_id="c", application=CLEAN_JOB, entities=["geo"], asset_alias=alias)
    analytics = LakeSparkSubmitOperator(task_id="a", application=ANALYTICS_JOB, asset_alias=lake_alias("analytics"))

    assert [o.name for o in clean.outlets] == ["pinterest_clean_any_bucket"]
    assert (clean.datasets_written(), analytics.datasets_written()) == ([("clean", "geo")], [("analytics", None)])
    with pytest.raises(ValueError, match="cannot be used with a lake_root"):
        LakeSparkSubmitOperator(task_id="l", application=CLEAN_JOB, lake_root="file:///tmp/lake", asset_alias=alias)
