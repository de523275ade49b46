"""A Spark job that finds its lease lost after a write (it was paused longer than the lease, and another run took the
day over) leaves the day reading as not written, and the analytics publish only results that hold the rows they
wrote."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from include.drain.errors import LockLostError
from include.lake import SOURCE_NAME, SUCCESS_NAME, partition_prefix, publication_key
from spark_jobs import analytics, clean
from spark_jobs.lease import MixedWriteError
from spark_jobs.publication import Publication
from spark_jobs.session import Lake
from tests.spark_jobs.lake_days import DAYS, run


class LeaseLostAt:
    """A lease whose ``lost_at``-th renewal (1-based) finds it taken over; ``before_renewal`` runs before each."""

    def __init__(self, lost_at: int | None, before_renewal: Callable[[int], None] = lambda _: None) -> None:
        self.renewals, self._lost_at, self._before = 0, lost_at, before_renewal

    def renew(self) -> None:
        self.renewals += 1
        self._before(self.renewals)
        if self.renewals == self._lost_at:
            raise LockLostError("lost the lease: another run took it over")


def test_a_clean_whose_lease_is_lost_after_its_write_withdraws_the_days_markers(
    spark: SparkSession, lake: Path, caplog: pytest.LogCaptureFixture
):
    folder = lake / partition_prefix("clean", "pin", DAYS[0])
    assert (folder / SUCCESS_NAME).exists() and (folder / SOURCE_NAME).exists()  # as the other run left the day

    with pytest.raises(LockLostError):
        clean.clean_partition(
            spark, Lake(bucket="unused", root=lake.as_uri()), "pin", DAYS[0], LeaseLostAt(2), ("paused-try", 1)
        )

    # its Parquet may sit next to the other run's: without both markers the analytics read the day as not cleaned
    assert not (folder / SUCCESS_NAME).exists() and not (folder / SOURCE_NAME).exists()
    # and a try replaced by a later one that succeeded is retried by nothing: the log names what cleans the day again
    assert (
        "airflow tasks clear pinterest_daily --task-regex spark_clean --start-date 2026-11-22T00:00:00+00:00 "
        "--end-date 2026-11-22T00:00:00+00:00 --downstream" in caplog.text
    )
    with pytest.raises(analytics.MissingCleanDataError, match="2026-11-22"):
        run(analytics, lake, DAYS[0])
    run(clean, lake, DAYS[0], "--entity", "pin")  # a run that cleans the day again makes it ready
    run(analytics, lake, DAYS[0])


def land_a_late_copy_of_a_part_file(folder: Path) -> None:
    """What a paused run's commit does when it resumes: its Parquet lands in the folder next to this job's."""
    part = next(folder.glob("part-*.parquet"))
    shutil.copy(part, folder / part.name.replace("part-00000", "part-00000-late"))


def test_a_clean_folder_holding_rows_another_run_wrote_next_to_this_jobs_gets_no_markers(
    spark: SparkSession, lake: Path
):
    folder = lake / partition_prefix("clean", "pin", DAYS[2])

    def late_files_land(renewal: int) -> None:  # the renewal after the Parquet: another run's files are there
        if renewal == 2:
            land_a_late_copy_of_a_part_file(folder)

    with pytest.raises(MixedWriteError, match=r"clean/pin/dt=2026-11-24/ holds 6 rows where this job wrote 3"):
        clean.clean_partition(
            spark, Lake(bucket="unused", root=lake.as_uri()), "pin", DAYS[2], LeaseLostAt(None, late_files_land),
            ("this-run", 1),
        )  # fmt: skip

    assert not (folder / SUCCESS_NAME).exists() and not (folder / SOURCE_NAME).exists()


def publication_of(lake: Path) -> Publication | None:
    path = lake / publication_key(DAYS[1])
    return Publication.model_validate_json(path.read_text()) if path.exists() else None


def test_analytics_whose_lease_is_lost_after_a_result_withdraw_the_publication(
    spark: SparkSession, lake: Path, caplog: pytest.LogCaptureFixture
):
    run(analytics, lake, DAYS[1])
    published = publication_of(lake)
    assert published is not None
    results = {"r1": spark.createDataFrame([("x",)], "value string"), "r2": spark.createDataFrame([("y",)], "v string")}
    mine = published.model_copy(update={"run_id": "paused-try", "results": dict.fromkeys(results, 1)})

    # renewals: before withdrawing, before r1, before r2. By the third, another run has taken the day over and
    # published it, and this job's r1 may have landed after that run's: the publication no longer vouches for r1
    def other_run_publishes(renewal: int) -> None:
        if renewal == 3:
            (lake / publication_key(DAYS[1])).write_text(published.model_dump_json())

    with pytest.raises(LockLostError):
        analytics.publish(Lake(bucket="unused", root=lake.as_uri()), mine, results, LeaseLostAt(3, other_run_publishes))

    assert publication_of(lake) is None
    assert (  # the run without a logical date here: the clear selects the day's scheduled or backfilled run
        "airflow tasks clear pinterest_daily --task-regex spark_analytics --start-date 2026-11-23T00:00:00+00:00 "
        "--end-date 2026-11-23T00:00:00+00:00" in caplog.text
    )


@pytest.mark.parametrize(
    "late_at",
    [
        3,  # the renewal before the publication: withdrawn before the results were rewritten, and not written again
        4,  # the renewal after the publication: published after a check that found the right rows, then withdrawn
    ],
)
def test_a_result_holding_rows_another_run_wrote_next_to_this_jobs_is_not_published(
    spark: SparkSession, lake: Path, late_at: int
):
    run(analytics, lake, DAYS[1])
    published = publication_of(lake)
    assert published is not None
    results = {"r1": spark.createDataFrame([("x",), ("y",)], "value string")}
    mine = published.model_copy(update={"run_id": "this-run", "results": {"r1": 2}})
    folder = lake / partition_prefix("analytics", "r1", DAYS[1])

    def late_files_land(renewal: int) -> None:  # a paused run's commit lands in r1's folder before this renewal
        if renewal == late_at:
            if late_at == 4:
                assert publication_of(lake) == mine
            land_a_late_copy_of_a_part_file(folder)

    with pytest.raises(MixedWriteError, match=r"analytics/r1/dt=2026-11-23/ holds 4 rows where this job wrote 2"):
        analytics.publish(Lake(bucket="unused", root=lake.as_uri()), mine, results, LeaseLostAt(None, late_files_land))

    assert publication_of(lake) is None


def test_analytics_that_find_a_day_cleaned_again_after_they_read_it_write_nothing(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compute = analytics.computed

    def with_another_run_cleaning_then(*args):  # the day is cleaned again once the results are computed
        results = compute(*args)
        run(clean, lake, DAYS[0], "--entity", "geo")
        return results

    monkeypatch.setattr(analytics, "computed", with_another_run_cleaning_then)
    with pytest.raises(analytics.LakeChangedError, match="nothing was written"):
        run(analytics, lake, DAYS[0])
    assert not (lake / publication_key(DAYS[0])).exists()
    assert not list(lake.glob("analytics/*/*/*.parquet"))
    monkeypatch.undo()
    run(analytics, lake, DAYS[0])  # the retry reads the day as it is now
    assert (lake / publication_key(DAYS[0])).exists()
