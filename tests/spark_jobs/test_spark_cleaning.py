"""Each cleaning rule of DESIGN.md §5 on the messy forms that occur, on a local SparkSession."""

from __future__ import annotations

import itertools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from include.records import MODELS, GeoRecord, PinRecord, UserRecord, kafka_value
from spark_jobs.cleaning import BLANK_CHARACTERS, clean, follower_count_number
from spark_jobs.schemas import raw_line_reader, record_schema
from tests.conftest import REAL_PIN_SAMPLE as SAMPLE
from tests.spark_jobs.submitted import printed_by_submitted_job

NO_TAGS = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
PLACEHOLDER_TEXTS = {
    "No Title Data Available",
    "No description available Story format",
    "No description available",
    "Untitled",
    "User Info Error",
    "Image src error.",
    NO_TAGS,
}
T0 = 1_764_000_000_000  # epoch ms of the first ingest in these tests
INGEST = "ingested_at timestamp, kafka_partition long, kafka_offset long"
PIN_SCHEMA = (
    "ind long, unique_id string, title string, description string, poster_name string, follower_count long, "
    "tag_list string, is_image_or_video string, image_src string, downloaded int, save_location string, "
    f"category string, {INGEST}"
)
GEO_SCHEMA = f"ind long, country string, coordinates array<double>, timestamp timestamp, {INGEST}"
USER_SCHEMA = f"ind long, user_name string, age int, date_joined timestamp, {INGEST}"


def kafka_line(value: dict[str, Any], *, offset: int, timestamp_ms: int, partition: int = 0) -> dict[str, Any]:
    """One raw line as the drain writes it: the Kafka coordinates next to the record."""
    key = value.get("unique_id", value.get("ind"))
    return {"partition": partition, "offset": offset, "timestamp": timestamp_ms, "key": str(key), "value": value}


def raw_frame(spark: SparkSession, entity: str, lines: list[dict[str, Any]]) -> DataFrame:
    """Raw lines parsed the way the clean job parses them (JSON text against the raw schema)."""
    text = spark.sparkContext.parallelize([json.dumps(line) for line in lines], 1)
    return raw_line_reader(spark, entity).json(text)


def at(offset: int) -> datetime:
    """The (naive UTC) ingest time of a line written at ``T0 + offset`` ms."""
    return datetime.fromtimestamp((T0 + offset) / 1000, tz=UTC).replace(tzinfo=None)


def line(value: dict[str, Any], offset: int) -> dict[str, Any]:
    return kafka_line(value, offset=offset, timestamp_ms=T0 + offset)


def pin(index: int, **fields: Any) -> dict[str, Any]:
    """A well-formed pin whose fields are overridden by ``fields`` (``None`` leaves a field out)."""
    record = {
        "index": index,
        "unique_id": f"00000000-0000-0000-0000-{index:012d}",
        "title": "A title",
        "description": "A description",
        "poster_name": "Poster",
        "follower_count": "437",
        "tag_list": "a,b",
        "is_image_or_video": "image",
        "image_src": "https://i.pinimg.com/x.jpg",
        "downloaded": 1,
        "save_location": "Local save in /data/art",
        "category": "art",
    } | fields
    return {name: value for name, value in record.items() if value is not None}


def clean_pin_row(index: int, offset: int, **fields: Any) -> tuple[Any, ...]:
    """The clean row expected from ``pin(index)`` with the given clean values."""
    row = {
        "ind": index,
        "unique_id": f"00000000-0000-0000-0000-{index:012d}",
        "title": "A title",
        "description": "A description",
        "poster_name": "Poster",
        "follower_count": 437,
        "tag_list": "a,b",
        "is_image_or_video": "image",
        "image_src": "https://i.pinimg.com/x.jpg",
        "downloaded": 1,
        "save_location": "/data/art",
        "category": "art",
    } | fields
    return (*row.values(), at(offset), 0, offset)


def test_pin_placeholders_become_null_and_values_are_typed(spark: SparkSession) -> None:
    raw = [
        pin(1, follower_count="User Info Error", poster_name="User Info Error"),
        pin(2, follower_count="124k", title="No Title Data Available"),
        pin(3, follower_count="1M", description="No description available Story format"),
        pin(4, follower_count="0", tag_list=NO_TAGS, description="No description available"),
        pin(5, follower_count="6k", image_src="Image src error.", title="Untitled"),
        pin(6, follower_count="", title="", category="", poster_name=None),  # empty strings, absent poster_name
        pin(7, follower_count="2.5M", downloaded=0, save_location="Local save in /data/mens-fashion"),
        pin(8, follower_count="12 followers", is_image_or_video="multi-video(story page format)"),
    ]
    expected = [
        clean_pin_row(1, 0, follower_count=None, poster_name=None),
        clean_pin_row(2, 1, follower_count=124_000, title=None),
        clean_pin_row(3, 2, follower_count=1_000_000, description=None),
        clean_pin_row(4, 3, follower_count=0, tag_list=None, description=None),
        clean_pin_row(5, 4, follower_count=6_000, image_src=None, title=None),
        clean_pin_row(6, 5, follower_count=None, title=None, category=None, poster_name=None),
        clean_pin_row(7, 6, follower_count=2_500_000, downloaded=0, save_location="/data/mens-fashion"),
        clean_pin_row(8, 7, follower_count=None, is_image_or_video="multi-video(story page format)"),
    ]
    lines = [line(record, offset) for offset, record in enumerate(raw)]

    actual = raw_frame(spark, "pin", lines).transform(clean("pin"))

    assertDataFrameEqual(actual, spark.createDataFrame(expected, PIN_SCHEMA))


def test_whitespace_only_text_and_a_bare_save_prefix_become_null(spark: SparkSession) -> None:
    raw = [
        pin(1, title="\t", description="\u00a0", poster_name=" \n ", save_location="Local save in "),
        pin(2, title="\r\n", category="\u00a0 \t", follower_count="\t"),
        pin(3, title="\u00a0kept\u00a0", save_location="Local save in \u00a0"),
        # the other Unicode whitespace: an em space, a thin space, the line separator, next-line, ogham space mark
        pin(4, title="\u2003", description="\u2009 ", poster_name="\u2028", tag_list="\x85", category="\u1680"),
        pin(5, title="\u200b"),  # a zero-width space is no whitespace (str.isspace() says so too)
    ]
    expected = [
        clean_pin_row(1, 0, title=None, description=None, poster_name=None, save_location=None),
        clean_pin_row(2, 1, title=None, category=None, follower_count=None),
        clean_pin_row(3, 2, title="\u00a0kept\u00a0", save_location=None),
        clean_pin_row(4, 3, title=None, description=None, poster_name=None, tag_list=None, category=None),
        clean_pin_row(5, 4, title="\u200b"),
    ]
    lines = [line(record, offset) for offset, record in enumerate(raw)]

    actual = raw_frame(spark, "pin", lines).transform(clean("pin"))

    assertDataFrameEqual(actual, spark.createDataFrame(expected, PIN_SCHEMA))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("437", 437),
        ("6k", 6_000),
        ("124k", 124_000),
        ("1M", 1_000_000),
        ("1.2k", 1_200),
        ("1.2345k", 1_234),  # 1234.5, truncated
        ("0.0000015M", 1),  # 1.5, truncated
        (" 35k ", 35_000),
        ("12k\u00a0", 12_000),  # the blank characters of the other text rules, no-break spaces included
        ("\u3000437\u202f", 437),
        ("\v1M", 1_000_000),
        ("437\u2028", 437),  # a line separator is blank around the number, as any whitespace
        ("437\u200b", None),  # a zero-width space is not (Java's $ lets a final line terminator through, \z not)
        ("19.99999999", 19),  # truncated however many decimals: a decimal(38,18) product rounded these to 20
        ("1.99999999999k", 1_999),
        ("1.9999999999999999999", 1),
        ("0012.5k", 12_500),
        ("9223372036854775807", 9_223_372_036_854_775_807),
        ("9223372036854775808", None),  # beyond a bigint
        ("9223372036854775.8079k", 9_223_372_036_854_775_807),
        ("9223372036854775.808k", None),
        # a long run of blanks is read once: a backtracking pattern took about 16 minutes on it
        pytest.param("1" + " " * 400_000 + "x", None, id="400k-blanks"),
        ("User Info Error", None),
        ("", None),
        ("k", None),
        ("1kk", None),
        ("-5", None),
        (None, None),
    ],
)
def test_follower_count_text_to_number(spark: SparkSession, text: str | None, number: int | None) -> None:
    frame = spark.createDataFrame([(text,)], "follower_count string")

    actual = frame.select(follower_count_number(frame.follower_count).alias("n"))

    assertDataFrameEqual(actual, [Row(n=number)])


def test_geo_coordinates_and_both_timestamp_formats(spark: SparkSession) -> None:
    raw = [
        {"ind": 1, "timestamp": "2020-05-06 07:08:09", "latitude": -12.5, "longitude": 100.25, "country": "Chile"},
        {"ind": 2, "timestamp": "2021-01-02T03:04:05", "latitude": 0.0, "longitude": -180.0, "country": "Peru"},
        {"ind": 3, "timestamp": "2021-01-02T03:04:05+02:00", "latitude": 90.0, "longitude": 0.5, "country": ""},
        {"ind": 4, "timestamp": "2022-12-31T23:59:59.250Z", "latitude": 1.0, "longitude": 2.0, "country": "Togo"},
    ]
    expected = [
        (1, "Chile", [-12.5, 100.25], datetime(2020, 5, 6, 7, 8, 9), at(0), 0, 0),
        (2, "Peru", [0.0, -180.0], datetime(2021, 1, 2, 3, 4, 5), at(1), 0, 1),
        (3, None, [90.0, 0.5], datetime(2021, 1, 2, 1, 4, 5), at(2), 0, 2),
        (4, "Togo", [1.0, 2.0], datetime(2022, 12, 31, 23, 59, 59, 250_000), at(3), 0, 3),
    ]
    lines = [line(record, offset) for offset, record in enumerate(raw)]

    actual = raw_frame(spark, "geo", lines).transform(clean("geo"))

    assertDataFrameEqual(actual, spark.createDataFrame(expected, GEO_SCHEMA))


def test_user_name_and_date_joined(spark: SparkSession) -> None:
    raw = [
        {"ind": 1, "first_name": "Ada", "last_name": "Lovelace", "age": 36, "date_joined": "2016-10-23 14:06:51"},
        {"ind": 2, "first_name": "Alan", "last_name": "Turing", "age": 41, "date_joined": "2017-02-03T04:05:06"},
        {"ind": 3, "first_name": "", "last_name": "Hopper", "age": 85, "date_joined": "2015-01-01T00:00:00Z"},
        {"ind": 4, "first_name": "", "last_name": "", "age": 20, "date_joined": "2020-07-08 09:10:11"},
    ]
    expected = [
        (1, "Ada Lovelace", 36, datetime(2016, 10, 23, 14, 6, 51), at(0), 0, 0),
        (2, "Alan Turing", 41, datetime(2017, 2, 3, 4, 5, 6), at(1), 0, 1),
        (3, "Hopper", 85, datetime(2015, 1, 1), at(2), 0, 2),
        (4, None, 20, datetime(2020, 7, 8, 9, 10, 11), at(3), 0, 3),
    ]
    lines = [line(record, offset) for offset, record in enumerate(raw)]

    actual = raw_frame(spark, "user", lines).transform(clean("user"))

    assertDataFrameEqual(actual, spark.createDataFrame(expected, USER_SCHEMA))


# Forms of the ISO-8601 text the API's models accept; each is checked against them below.
API_TIMESTAMP_FORMS = (
    "2020-05-17 08:31:02",
    "2020-05-17T08:31:02",
    "2020-05-17t08:31:02",
    "2020-05-17_08:31:02",
    "2020-05-17T08:31:02Z",
    "2020-05-17T08:31:02z",
    "2020-05-17 08:31:02z",
    "2020-05-17T08:31:02.5",
    "2020-05-17T08:31:02,5",
    "2020-05-17t08:31:02,25z",
    "2020-05-17T08:31:02,123456+01:00",
    "2020-05-17T08:31:02+0200",
    "2020-05-17T08:31:02-05:00",
    "2020-05-17T08:31:02+18:00",  # the widest offsets the API accepts
    "2020-05-17T08:31:02-1800",
    "2020-05-17T08:31",
    "2020-05-17T08:31Z",  # minutes, then a zone: Spark needs the seconds
    "2020-05-17 08:31+01:00",
    "2020-05-17",
)


def utc_instant(text: str) -> datetime:
    """The naive UTC instant of a timestamp text as pydantic (the API) parses it; a text without offset is UTC."""
    parsed = TypeAdapter(datetime).validate_python(text)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def api_accepts(record: dict[str, Any], model: type) -> bool:
    try:
        model.model_validate(record)
    except ValidationError:
        return False
    return True


def timestamp_forms() -> list[str]:
    """The forms above, and every text made of a day, a separator, a time and a zone, as far as the API takes it."""
    days = ("2020-05-17", "2020-02-29", "1969-12-31")
    separators = (" ", "T", "t", "_")
    times = ("08:31", "08:31:02", "08:31:02.5", "08:31:02,25", "08:31:02.123456", "23:59:59.999999", "8:31:02")
    zones = ("", "Z", "z", "+01:00", "-05:00", "+0200", "-1800", "+18:00", "+05", "-00:00", " Z", "UTC")
    grid = {"".join(parts) for parts in itertools.product(days, separators, times, zones)} | set(API_TIMESTAMP_FORMS)
    user = {"ind": 0, "first_name": "A", "last_name": "B", "age": 30}
    return sorted(t for t in grid if api_accepts({**user, "date_joined": t}, UserRecord))


def test_every_timestamp_form_the_api_accepts_becomes_that_instant(spark: SparkSession) -> None:
    forms = timestamp_forms()
    assert set(API_TIMESTAMP_FORMS) <= set(forms) and len(forms) > 300, len(forms)  # the API takes many of them
    geos = [{"ind": i, "timestamp": t, "latitude": 0.0, "longitude": 0.0, "country": "Chad"}
            for i, t in enumerate(forms)]  # fmt: skip
    users = [{"ind": i, "first_name": "A", "last_name": "B", "age": 30, "date_joined": t}
             for i, t in enumerate(forms)]  # fmt: skip
    expected = [Row(ind=i, t=utc_instant(text)) for i, text in enumerate(forms)]

    clean_geos = raw_frame(spark, "geo", [line(g, o) for o, g in enumerate(geos)]).transform(clean("geo"))
    clean_users = raw_frame(spark, "user", [line(u, o) for o, u in enumerate(users)]).transform(clean("user"))

    assertDataFrameEqual(clean_geos.select("ind", F.col("timestamp").alias("t")), expected)
    assertDataFrameEqual(clean_users.select("ind", F.col("date_joined").alias("t")), expected)


def test_duplicates_keep_the_latest_ingested(spark: SparkSession) -> None:
    first = pin(1, title="first")
    later = pin(1, title="later")
    same_time_higher_offset = pin(2, title="higher offset")
    lines = [
        kafka_line(later, offset=10, timestamp_ms=T0 + 5_000),
        kafka_line(first, offset=11, timestamp_ms=T0),  # a higher offset, but ingested earlier
        kafka_line(pin(2, title="lower offset"), offset=20, timestamp_ms=T0),
        kafka_line(same_time_higher_offset, offset=21, timestamp_ms=T0),
        kafka_line(pin(3), offset=30, timestamp_ms=T0),
    ]

    actual = raw_frame(spark, "pin", lines).transform(clean("pin")).select("ind", "title", "kafka_offset")

    assertDataFrameEqual(
        actual,
        [
            Row(ind=1, title="later", kafka_offset=10),
            Row(ind=2, title="higher offset", kafka_offset=21),
            Row(ind=3, title="A title", kafka_offset=30),
        ],
    )


def test_one_pin_under_every_spelling_of_its_uuid_is_one_clean_pin(spark: SparkSession) -> None:
    uuid = "6f1c2b4e-8a3d-4c5e-9f10-1234567890ab"
    spellings = [uuid.upper(), "{" + uuid + "}", uuid.replace("-", ""), "urn:uuid:" + uuid, uuid]
    pins = [pin(1, unique_id=spelling, title=f"copy {n}") for n, spelling in enumerate(spellings)]
    for record in pins:  # the API's model reads each as that UUID
        assert str(PinRecord.model_validate(record).unique_id) == uuid
    lines = [kafka_line(record, offset=n, timestamp_ms=T0 + n) for n, record in enumerate(pins)]
    lines.insert(2, kafka_line(pin(1, unique_id=uuid.upper(), title="the latest"), offset=9, timestamp_ms=T0 + 9))

    actual = raw_frame(spark, "pin", lines).transform(clean("pin")).select("unique_id", "title", "kafka_offset")

    assertDataFrameEqual(actual, [Row(unique_id=uuid, title="the latest", kafka_offset=9)])


def test_a_number_of_more_than_a_thousand_characters_is_read_as_the_api_reads_it(spark: SparkSession) -> None:
    # not what the API writes (it re-serialises), but what another producer may send and the drain keeps as sent
    latitude = "45." + "0" * 1_200
    value = f'{{"ind":1,"timestamp":"2020-01-01 00:00:00","latitude":{latitude},"longitude":-0.5,"country":"Chad"}}'
    assert GeoRecord.model_validate_json(value).latitude == 45.0  # the drain accepts it
    text = f'{{"partition":0,"offset":0,"timestamp":{T0},"key":"1","value":{value}}}'
    lines = spark.sparkContext.parallelize([text], 1)

    actual = raw_line_reader(spark, "geo").json(lines).transform(clean("geo")).select("ind", "coordinates")

    assertDataFrameEqual(actual, [Row(ind=1, coordinates=[45.0, -0.5])])


# Reads the raw lines of one file as the clean job does and prints each record's ind and country length; a JVM of
# its own, since a 20 MB line takes a few hundred MB of heap the tests' shared session may not have to spare.
READS_LONG_COUNTRIES = """
import json, sys
from pyspark.sql import functions as F
from spark_jobs.cleaning import clean
from spark_jobs.schemas import raw_line_reader
from spark_jobs.session import build_session

spark = build_session("long-strings")
rows = raw_line_reader(spark, "geo").json(sys.argv[1]).transform(clean("geo"))
print("READ " + json.dumps([r.asDict() for r in rows.select("ind", F.length("country").alias("chars")).collect()]))
spark.stop()
"""


@pytest.mark.slow
def test_a_string_of_more_than_twenty_million_characters_is_read_as_the_api_reads_it(tmp_path: Path) -> None:
    # over Jackson's default limit; only a producer other than the API, on a topic allowing 20 MB messages, sends one
    country = "a" * 20_000_001
    value = f'{{"ind":1,"timestamp":"2020-01-01 00:00:00","latitude":1.5,"longitude":-0.5,"country":"{country}"}}'
    assert GeoRecord.model_validate_json(value).country == country  # the drain accepts it
    (tmp_path / "raw.jsonl").write_text(f'{{"partition":0,"offset":0,"timestamp":{T0},"key":"1","value":{value}}}\n')

    read = printed_by_submitted_job(tmp_path, READS_LONG_COUNTRIES, "READ", "--master", "local[1]",
                                    job_args=[str(tmp_path / "raw.jsonl")])  # fmt: skip

    assert read == [{"ind": 1, "chars": 20_000_001}]


def test_geo_and_user_duplicates_are_keyed_on_ind(spark: SparkSession) -> None:
    old = {"ind": 7, "timestamp": "2020-01-01 00:00:00", "latitude": 1.0, "longitude": 1.0, "country": "Old"}
    new = old | {"country": "New"}
    lines = [line(old, 0), line(new, 1), line(old | {"ind": 8}, 2)]

    actual = raw_frame(spark, "geo", lines).transform(clean("geo")).select("ind", "country")

    assertDataFrameEqual(actual, [Row(ind=7, country="New"), Row(ind=8, country="Old")])


def test_spark_schema_agrees_with_the_record_models() -> None:
    for entity, model in MODELS.items():
        spark_fields = {field.name: field.dataType.simpleString() for field in record_schema(entity).fields}
        expected = {}
        for name, info in model.model_fields.items():
            annotation = str(info.annotation)
            expected[name] = "bigint" if "int" in annotation else "double" if "float" in annotation else "string"
        assert spark_fields == expected, entity


def test_blank_characters_are_exactly_pythons_whitespace() -> None:
    whitespace = {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}

    assert set(BLANK_CHARACTERS) == whitespace


def becomes_null(text: str | None) -> bool:
    """The null rule of DESIGN.md §5, applied by Python: absent, blank (any whitespace) or a placeholder."""
    return text is None or not text.strip() or text in PLACEHOLDER_TEXTS


def test_real_sample_rows_parse_and_clean_as_counted_independently(spark: SparkSession) -> None:
    records = [PinRecord.model_validate_json(text) for text in SAMPLE.read_text().splitlines() if text.strip()]
    values = [json.loads(kafka_value(record)) for record in records]
    lines = [line(value, offset) for offset, value in enumerate(values)]
    unique = list({value["unique_id"]: value for value in values}.values())  # later lines win, as in the job

    def nulls(field: str) -> int:
        return sum(becomes_null(value.get(field)) for value in unique)

    clean_pins = raw_frame(spark, "pin", lines).transform(clean("pin")).cache()
    counts = clean_pins.selectExpr(
        "count(*) AS rows",
        "count_if(title IS NULL) AS null_titles",
        "count_if(description IS NULL) AS null_descriptions",
        "count_if(follower_count IS NULL) AS null_followers",
        "count_if(tag_list IS NULL) AS null_tags",
        "count_if(image_src IS NULL) AS null_images",
        "count_if(save_location LIKE 'Local save in%') AS prefixed",
    ).first()

    assert counts == Row(
        rows=len(unique),
        null_titles=nulls("title"),
        null_descriptions=nulls("description"),
        null_followers=nulls("follower_count"),
        null_tags=nulls("tag_list"),
        null_images=nulls("image_src"),
        prefixed=0,
    )
