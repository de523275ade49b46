"""The eight analytics on a fixture data set, against results computed independently with DuckDB SQL.

The DuckDB queries are written differently from the Spark transforms: "most popular" is the minimum value
among those reaching the maximum count (``min`` skips nulls, so nulls come last), medians are DuckDB's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

import duckdb
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from spark_jobs import queries

PIN_SCHEMA = "ind long, unique_id string, poster_name string, follower_count long, category string"
GEO_SCHEMA = "ind long, country string, timestamp timestamp"
USER_SCHEMA = "ind long, age int, date_joined timestamp"

AGE_GROUP_SQL = """CASE WHEN age BETWEEN 18 AND 24 THEN '18-24' WHEN age BETWEEN 25 AND 35 THEN '25-35'
                   WHEN age BETWEEN 36 AND 50 THEN '36-50' WHEN age > 50 THEN '+50' END"""


def fixture_rows() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Random rows over small domains (so groups collide), plus hand-made ties."""
    rng = random.Random(20261125)
    pins, geos, users = [], [], []
    for ind in range(1, 121):
        follower = rng.choice([None, 0, 10, 437, 6_000, 6_000, 124_000, 1_000_000])
        poster = rng.choice([None, "ana", "bob", "cy", "dee"])
        category = rng.choice([None, "art", "beauty", "diy", "diy", "travel"])
        pins.append((ind, f"u{ind}", poster, follower, category))
        if ind % 17:
            country = rng.choice([None, "Aland", "Brazil", "Chad", "Chad"])
            geos.append((ind, country, datetime(rng.choice([2018, 2019, 2020, 2021]), 3, 4, 5, 6, 7)))
        if ind % 13:
            age = rng.choice([None, 12, 17, 18, 24, 25, 30, 35, 36, 50, 51, 70])
            users.append((ind, age, datetime(rng.choice([2015, 2016, 2017, 2018]), 6, 7, 8, 9, 10)))
    ties = [  # ind, category, poster, followers, country
        (1001, "beta", "Zed", 5_000, "Tieland"),
        (1002, "alpha", "Amy", 5_000, "Tieland"),
        (1003, "beta", "Amy", 10, "Tieland"),
        (1004, "alpha", None, 5_000, "Tieland"),
        (1005, None, None, 2_000_000, "Nulland"),
        (1006, None, "Max", 2_000_000, "Nulland"),
        (1007, "zeta", "Mia", None, "Nulland"),
        (1008, "zeta", None, None, "Nulland"),
        (1009, "art", "Max", 2_000_000, "Zulu"),  # ties Nulland on followers: Nulland comes first
        (1010, "art", "Ida", 9_000_000, None),  # most followers of all, but no country: not the top country
    ]
    for ind, category, poster, follower, country in ties:
        pins.append((ind, f"u{ind}", poster, follower, category))
        geos.append((ind, country, datetime(2022, 1, 1)))
        users.append((ind, 40, datetime(2019, 1, 1)))
    return pins, geos, users


@pytest.fixture(scope="module")
def frames(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame]:
    pins, geos, users = fixture_rows()
    return (
        spark.createDataFrame(pins, PIN_SCHEMA),
        spark.createDataFrame(geos, GEO_SCHEMA),
        spark.createDataFrame(users, USER_SCHEMA),
    )


@pytest.fixture(scope="module")
def results(frames: tuple[DataFrame, DataFrame, DataFrame]) -> dict[str, DataFrame]:
    return queries.all_results(*frames)


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    pins, geos, users = fixture_rows()
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE pins (ind BIGINT, unique_id VARCHAR, poster_name VARCHAR, follower_count BIGINT, "
        "category VARCHAR)"
    )
    con.execute("CREATE TABLE geos (ind BIGINT, country VARCHAR, timestamp TIMESTAMP)")
    con.execute("CREATE TABLE users (ind BIGINT, age INTEGER, date_joined TIMESTAMP)")
    con.executemany("INSERT INTO pins VALUES (?, ?, ?, ?, ?)", pins)
    con.executemany("INSERT INTO geos VALUES (?, ?, ?)", geos)
    con.executemany("INSERT INTO users VALUES (?, ?, ?)", users)
    con.execute("CREATE VIEW pins_geo AS SELECT * FROM pins JOIN geos USING (ind)")
    con.execute(
        f"CREATE VIEW pins_users AS SELECT *, {AGE_GROUP_SQL} AS age_group, year(date_joined) AS join_year "
        "FROM pins JOIN users USING (ind)"
    )
    yield con
    con.close()


def most_popular_sql(source: str, group: str) -> str:
    """Per group, the alphabetically first (nulls last) category among those with the highest count."""
    return f"""
        WITH counts AS (SELECT {group} AS g, category, count(*) AS n FROM {source} GROUP BY ALL),
             best AS (SELECT g, max(n) AS n FROM counts GROUP BY g)
        SELECT c.g, min(c.category), c.n
        FROM counts c JOIN best b ON c.g IS NOT DISTINCT FROM b.g AND c.n = b.n
        GROUP BY c.g, c.n"""


TOP_POSTER_SQL = """
    WITH best AS (SELECT country, max(follower_count) AS f FROM pins_geo GROUP BY country)
    SELECT p.country, min(p.poster_name), b.f
    FROM pins_geo p JOIN best b
      ON p.country IS NOT DISTINCT FROM b.country AND p.follower_count IS NOT DISTINCT FROM b.f
    GROUP BY p.country, b.f"""

EXPECTED_SQL = {
    "popular_category_by_country": most_popular_sql("pins_geo", "country"),
    "popular_category_by_year": most_popular_sql("pins_geo", "year(timestamp)"),
    "top_poster_by_country": TOP_POSTER_SQL,
    "top_country_by_follower_count": f"""
        WITH top AS (SELECT * FROM ({TOP_POSTER_SQL}) WHERE country IS NOT NULL)
        SELECT min(country), max(f) FROM top WHERE f = (SELECT max(f) FROM top)""",
    "popular_category_by_age_group": most_popular_sql("pins_users WHERE age_group IS NOT NULL", "age_group"),
    "median_followers_by_age_group": """
        SELECT age_group, median(follower_count)::DOUBLE FROM pins_users WHERE age_group IS NOT NULL GROUP BY 1""",
    "users_joined_by_year": "SELECT year(date_joined), count(*) FROM users GROUP BY 1",
    "median_followers_by_join_year": "SELECT join_year, median(follower_count)::DOUBLE FROM pins_users GROUP BY 1",
    "median_followers_by_age_group_and_join_year": """
        SELECT age_group, join_year, median(follower_count)::DOUBLE FROM pins_users WHERE age_group IS NOT NULL
        GROUP BY 1, 2""",
}

# DESIGN.md §5 names the columns; the types are what a reader of the Parquet results may rely on
SCHEMAS = {
    "popular_category_by_country": "country string, category string, category_count bigint",
    "popular_category_by_year": "post_year int, category string, category_count bigint",
    "top_poster_by_country": "country string, poster_name string, follower_count bigint",
    "top_country_by_follower_count": "country string, follower_count bigint",
    "popular_category_by_age_group": "age_group string, category string, category_count bigint",
    "median_followers_by_age_group": "age_group string, median_follower_count double",
    "users_joined_by_year": "post_year int, number_users_joined bigint",
    "median_followers_by_join_year": "post_year int, median_follower_count double",
    "median_followers_by_age_group_and_join_year": "age_group string, post_year int, median_follower_count double",
}


def test_every_result_has_the_designed_columns_and_types(results: dict[str, DataFrame]) -> None:
    actual = {
        name: ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in frame.schema)
        for name, frame in results.items()
    }
    assert actual == SCHEMAS


@pytest.mark.parametrize("name", list(EXPECTED_SQL))
def test_result_matches_duckdb(
    spark: SparkSession, results: dict[str, DataFrame], db: duckdb.DuckDBPyConnection, name: str
) -> None:
    actual = results[name]

    expected = spark.createDataFrame(db.sql(EXPECTED_SQL[name]).fetchall(), SCHEMAS[name])

    assertDataFrameEqual(actual, expected)


def test_ties_go_to_the_alphabetically_first_value_nulls_last(results: dict[str, DataFrame]) -> None:
    by_country = {row.country: row for row in results["popular_category_by_country"].collect()}
    posters = {row.country: row for row in results["top_poster_by_country"].collect()}

    assert (by_country["Tieland"].category, by_country["Tieland"].category_count) == ("alpha", 2)
    assert (by_country["Nulland"].category, by_country["Nulland"].category_count) == ("zeta", 2)
    assert (posters["Tieland"].poster_name, posters["Tieland"].follower_count) == ("Amy", 5_000)
    assert posters["Nulland"].poster_name == "Max"
    assert results["top_country_by_follower_count"].collect() == [("Nulland", 2_000_000)]


def test_even_count_medians_are_the_mean_of_the_two_middle_values(
    results: dict[str, DataFrame], db: duckdb.DuckDBPyConnection
) -> None:
    groups = db.sql(
        "SELECT age_group, list_sort(list(follower_count)) FROM pins_users "
        "WHERE age_group IS NOT NULL AND follower_count IS NOT NULL GROUP BY 1"
    ).fetchall()
    even = {
        group: (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
        for group, values in groups
        if len(values) % 2 == 0 and values[len(values) // 2 - 1] != values[len(values) // 2]
    }
    assert even, "the fixture must hold an even-sized group whose two middle values differ"

    medians = {row.age_group: row.median_follower_count for row in results["median_followers_by_age_group"].collect()}

    assert {group: medians[group] for group in even} == even
