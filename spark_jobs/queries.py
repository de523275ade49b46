"""The eight analytics (docs/spark.md, "Analytics") as pure transforms over clean, de-duplicated data.

"Most popular" keeps one row per group: the highest count, ties to the
alphabetically first value, nulls last. Medians are exact (``median`` is
Spark's exact percentile, the mean of the two middle values for an even count).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.cleaning import Transform

# The clean columns the results read (with the record key); the job reads no others.
USED_COLUMNS: dict[str, tuple[str, ...]] = {
    "pin": ("ind", "unique_id", "poster_name", "follower_count", "category"),
    "geo": ("ind", "country", "timestamp"),
    "user": ("ind", "age", "date_joined"),
}

AGE_GROUPS: tuple[tuple[str, int, int | None], ...] = (
    ("18-24", 18, 24),
    ("25-35", 25, 35),
    ("36-50", 36, 50),
    ("+50", 51, None),
)


def joined_on_ind(other: DataFrame, *columns: str) -> Transform:
    """Inner join with ``other`` on ``ind``, taking only ``columns`` from it."""
    return lambda df: df.join(other.select("ind", *columns), on="ind", how="inner")


def age_group(age: Column) -> Column:
    """``18-24``, ``25-35``, ``36-50`` or ``+50``; null under 18 (and for an unknown age)."""
    group = F.lit(None).cast("string")
    for name, low, high in reversed(AGE_GROUPS):
        in_group = age >= low if high is None else age.between(low, high)
        group = F.when(in_group, F.lit(name)).otherwise(group)
    return group


def with_age_group(df: DataFrame) -> DataFrame:
    """Add ``age_group`` from ``age``, leaving out users under 18."""
    return df.withColumn("age_group", age_group(F.col("age"))).where(F.col("age_group").isNotNull())


def with_year_of(column: str) -> Transform:
    """Add ``post_year``: the year of a timestamp column."""
    return lambda df: df.withColumn("post_year", F.year(column))


def first_per_group(groups: list[str], order: list[Column]) -> Transform:
    """One row per group: the first by ``order``."""
    window = Window.partitionBy(*groups).orderBy(*order)
    return lambda df: df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def most_popular(groups: list[str], value: str, count_name: str) -> Transform:
    """Per group, the most frequent ``value`` and its count (ties -> alphabetically first, nulls last)."""

    def transform(df: DataFrame) -> DataFrame:
        counted = df.groupBy(*groups, value).agg(F.count(F.lit(1)).alias(count_name))
        order = [F.col(count_name).desc(), F.col(value).asc_nulls_last()]
        return counted.transform(first_per_group(groups, order)).select(*groups, value, count_name)

    return transform


def median_follower_count(groups: list[str]) -> Transform:
    """Exact median of ``follower_count`` per group."""
    return lambda df: df.groupBy(*groups).agg(F.median("follower_count").alias("median_follower_count"))


# 1. country, category, category_count
def popular_category_by_country(pins_geo: DataFrame) -> DataFrame:
    return pins_geo.transform(most_popular(["country"], "category", "category_count"))


# 2. post_year, category, category_count (year of the geo timestamp)
def popular_category_by_year(pins_geo: DataFrame) -> DataFrame:
    return pins_geo.transform(with_year_of("timestamp")).transform(
        most_popular(["post_year"], "category", "category_count")
    )


# 3. country, poster_name, follower_count
def top_poster_by_country(pins_geo: DataFrame) -> DataFrame:
    order = [F.col("follower_count").desc_nulls_last(), F.col("poster_name").asc_nulls_last()]
    return pins_geo.transform(first_per_group(["country"], order)).select("country", "poster_name", "follower_count")


# 3'. country, follower_count: the country whose top poster has most followers (a null country is none)
def top_country_by_follower_count(top_posters: DataFrame) -> DataFrame:
    order = [F.col("follower_count").desc_nulls_last(), F.col("country").asc()]
    countries = top_posters.where(F.col("country").isNotNull())
    return countries.orderBy(*order).limit(1).select("country", "follower_count")


# 4. age_group, category, category_count
def popular_category_by_age_group(pins_users: DataFrame) -> DataFrame:
    return pins_users.transform(with_age_group).transform(most_popular(["age_group"], "category", "category_count"))


# 5. age_group, median_follower_count
def median_followers_by_age_group(pins_users: DataFrame) -> DataFrame:
    return pins_users.transform(with_age_group).transform(median_follower_count(["age_group"]))


# 6. post_year, number_users_joined (year of date_joined)
def users_joined_by_year(users: DataFrame) -> DataFrame:
    return (
        users.transform(with_year_of("date_joined"))
        .groupBy("post_year")
        .agg(F.count(F.lit(1)).alias("number_users_joined"))
    )


# 7. post_year, median_follower_count (by joining year)
def median_followers_by_join_year(pins_users: DataFrame) -> DataFrame:
    return pins_users.transform(with_year_of("date_joined")).transform(median_follower_count(["post_year"]))


# 8. age_group, post_year, median_follower_count (by joining year)
def median_followers_by_age_group_and_join_year(pins_users: DataFrame) -> DataFrame:
    return (
        pins_users.transform(with_age_group)
        .transform(with_year_of("date_joined"))
        .transform(median_follower_count(["age_group", "post_year"]))
    )


def all_results(pins: DataFrame, geos: DataFrame, users: DataFrame) -> dict[str, DataFrame]:
    """Every analytics result by its dataset name (``analytics/<name>/``), from de-duplicated clean data."""
    pins_geo = pins.transform(joined_on_ind(geos, "country", "timestamp")).cache()
    pins_users = pins.transform(joined_on_ind(users, "age", "date_joined")).cache()
    top_posters = top_poster_by_country(pins_geo).cache()
    return {
        "popular_category_by_country": popular_category_by_country(pins_geo),
        "popular_category_by_year": popular_category_by_year(pins_geo),
        "top_poster_by_country": top_posters,
        "top_country_by_follower_count": top_country_by_follower_count(top_posters),
        "popular_category_by_age_group": popular_category_by_age_group(pins_users),
        "median_followers_by_age_group": median_followers_by_age_group(pins_users),
        "users_joined_by_year": users_joined_by_year(users),
        "median_followers_by_join_year": median_followers_by_join_year(pins_users),
        "median_followers_by_age_group_and_join_year": median_followers_by_age_group_and_join_year(pins_users),
    }
