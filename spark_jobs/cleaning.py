"""The cleaning rules (docs/spark.md, "Cleaning") as pure ``DataFrame -> DataFrame`` transforms.

Input of :func:`clean` is a raw partition read with ``schemas.raw_line_schema``;
output is one clean row per record key, the latest ingested, with the Kafka
coordinates kept as ``ingested_at``, ``kafka_partition`` and ``kafka_offset``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from include.records import KEY_FIELD, Entity

Transform = Callable[[DataFrame], DataFrame]

PLACEHOLDERS: tuple[str, ...] = (
    "No Title Data Available",
    "No description available Story format",
    "No description available",
    "Untitled",
    "User Info Error",
    "Image src error.",
    "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
)
SAVE_LOCATION_PREFIX = "Local save in "
# What a blank text may consist of: every character Python's str.isspace() calls whitespace (ASCII whitespace and
# its separators, next-line, the Unicode spaces, no-break ones included, and the line and paragraph separators).
BLANK_CHARACTERS = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
INGEST_COLUMNS = ("ingested_at", "kafka_partition", "kafka_offset")
LATEST_BY = ("ingested_at", "kafka_offset")  # what "latest ingested" orders by
_BLANK = "[" + "".join(f"\\u{ord(c):04x}" for c in BLANK_CHARACTERS) + "]"  # a Java regex class of them
# Possessive quantifiers: a long run of blanks is matched once, not backtracked over (quadratic in Java);
# \z, not $, which would also match before a final line terminator such as U+2028.
_FOLLOWER_PATTERN = rf"^{_BLANK}*+(\d++)(?:\.(\d++))?{_BLANK}*+([kKmM]?){_BLANK}*+\z"
_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))

# Column order of each clean dataset (the ingest columns follow).
CLEAN_COLUMNS: dict[Entity, tuple[str, ...]] = {
    "pin": (
        "ind",
        "unique_id",
        "title",
        "description",
        "poster_name",
        "follower_count",
        "tag_list",
        "is_image_or_video",
        "image_src",
        "downloaded",
        "save_location",
        "category",
    ),
    "geo": ("ind", "country", "coordinates", "timestamp"),
    "user": ("ind", "user_name", "age", "date_joined"),
}


def checked_key(key: str) -> Column:
    """The record's ``key`` field; a line without a record or without that field fails the job, naming the line."""
    missing = F.format_string(
        "raw line at %s (Kafka partition %s, offset %s) has no record or no %s",
        F.input_file_name(),
        F.col("partition"),
        F.col("offset"),
        F.lit(key),
    )
    return F.when(F.col(f"value.{key}").isNull(), F.raise_error(missing)).otherwise(F.col(f"value.{key}"))


def records_with_coordinates(key: str) -> Transform:
    """Flatten raw lines: the record's fields plus when and where Kafka stored it, in one projection.

    The ``key`` field is checked in the same projection (no extra pass over the data).
    """

    def transform(raw: DataFrame) -> DataFrame:
        fields = [
            checked_key(key).alias(key) if name == key else F.col(f"value.{name}")
            for name in raw.schema["value"].dataType.names
        ]
        return raw.select(
            *fields,
            F.timestamp_millis("timestamp").alias("ingested_at"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
        )

    return transform


def keep_latest(key: str) -> Transform:
    """One row per ``key``: the latest ingested (Kafka timestamp, then offset)."""

    def transform(df: DataFrame) -> DataFrame:
        rest = [name for name in df.columns if name != key and name not in LATEST_BY]
        ordered = [*LATEST_BY, *rest]
        latest = df.groupBy(key).agg(F.max(F.struct(*ordered)).alias("latest"))
        return latest.select(*[F.col(key) if name == key else F.col(f"latest.{name}") for name in df.columns])

    return transform


def _is_blank(column: Column) -> Column:
    return F.trim(column, F.lit(BLANK_CHARACTERS)) == ""


def nulls_for(placeholders: Iterable[str]) -> Transform:
    """Every string column: empty (or blank) values and the given placeholders become null."""
    values = list(placeholders)

    def transform(df: DataFrame) -> DataFrame:
        replaced = {}
        for field in df.schema.fields:
            if isinstance(field.dataType, StringType):
                column = F.col(field.name)
                unwanted = _is_blank(column) | column.isin(values) if values else _is_blank(column)
                replaced[field.name] = F.when(unwanted, F.lit(None)).otherwise(column)
        return df.withColumns(replaced)

    return transform


def follower_count_number(column: Column) -> Column:
    """``"437"`` -> 437, ``"124k"`` -> 124000, ``"1M"`` -> 1000000 (decimals allowed, truncated: ``"1.2345k"`` ->
    1234); too large for a ``bigint``, or anything else -> null."""
    whole = F.regexp_extract(column, _FOLLOWER_PATTERN, 1)
    fraction = F.regexp_extract(column, _FOLLOWER_PATTERN, 2)
    suffix = F.lower(F.regexp_extract(column, _FOLLOWER_PATTERN, 3))
    shift = F.when(suffix == "k", F.lit(3)).when(suffix == "m", F.lit(6)).otherwise(F.lit(0))
    # move the decimal point by the suffix's power of ten and drop the digits after it: exact at any length
    digits = F.concat(whole, F.left(F.rpad(fraction, 6, "0"), shift))
    return F.when(column.rlike(_FOLLOWER_PATTERN), digits.try_cast("long"))


def canonical_uuid(column: Column) -> Column:
    """A UUID in any spelling the API's model reads (upper case, braces, ``urn:uuid:``, no hyphens) -> the
    lower-case hyphenated form the API writes, so that one pin under several spellings is one pin."""
    digits = F.regexp_replace(F.lower(column), r"^urn:uuid:|[{}-]", "")
    canonical = F.concat_ws("-", *(F.substring(digits, start, length) for start, length in _UUID_GROUPS))
    return F.when(digits.rlike("^[0-9a-f]{32}$"), canonical).otherwise(column)  # anything else as it was


_MINUTES_BEFORE_ZONE = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})([Z+-])"  # a time of hours and minutes, then its zone


def timestamp_from_text(column: Column) -> Column:
    """``YYYY-MM-DD HH:MM:SS`` or any ISO-8601 form the API accepts -> a timestamp (UTC without an offset).

    Spark's cast takes ``T``, ``Z`` and ``.`` fractions; the API (pydantic) also takes ``t``, ``z``, ``_`` as the
    date/time separator and ``,`` fractions, so those are rewritten first. Spark also needs seconds before a zone
    (``05:06Z``, ``05:06+01:00``), which the API does not: ``:00`` is added there. Unparseable text becomes null.
    """
    text = F.translate(F.upper(column), ",_", ".T")
    return F.regexp_replace(text, _MINUTES_BEFORE_ZONE, "$1:00$2").try_cast("timestamp")


def clean_pins(pins: DataFrame) -> DataFrame:
    """Pin rules: bare save path, placeholders to null, follower counts to numbers, ``index`` -> ``ind``.

    The save prefix goes first, so that a bare prefix is blank and becomes null.
    """
    return (
        pins.withColumn("save_location", F.regexp_replace("save_location", "^" + SAVE_LOCATION_PREFIX, ""))
        .transform(nulls_for(PLACEHOLDERS))
        .withColumnsRenamed({"index": "ind"})
        .withColumns(
            {
                "follower_count": follower_count_number(F.col("follower_count")),
                "downloaded": F.col("downloaded").cast("int"),
            }
        )
    )


def clean_geos(geos: DataFrame) -> DataFrame:
    """Geo rules: empty strings to null, ``coordinates`` array, a real timestamp (both text formats)."""
    return (
        geos.transform(nulls_for(()))
        .withColumn("coordinates", F.array("latitude", "longitude"))
        .withColumn("timestamp", timestamp_from_text(F.col("timestamp")))
    )


def clean_users(users: DataFrame) -> DataFrame:
    """User rules: empty strings to null, ``user_name`` from both names, a real ``date_joined``."""
    user_name = F.concat_ws(" ", "first_name", "last_name")
    return (
        users.transform(nulls_for(()))
        .withColumn("user_name", F.when(user_name != "", user_name))
        .withColumn("age", F.col("age").cast("int"))
        .withColumn("date_joined", timestamp_from_text(F.col("date_joined")))
    )


def one_spelling_of_the_key(entity: Entity) -> Transform:
    """Pins are keyed by a UUID, which has several spellings (the API writes one, other producers may not);
    the numeric keys of geo and user records have one."""
    if entity != "pin":
        return lambda df: df
    return lambda df: df.withColumn("unique_id", canonical_uuid(F.col("unique_id")))


_RULES: dict[Entity, Transform] = {"pin": clean_pins, "geo": clean_geos, "user": clean_users}


def select_clean_columns(entity: Entity) -> Transform:
    """Keep the clean dataset's columns, in their order."""
    return lambda df: df.select(*CLEAN_COLUMNS[entity], *INGEST_COLUMNS)


def clean(entity: Entity) -> Transform:
    """Raw lines of ``entity`` -> clean rows, one per record key (the latest ingested)."""

    def transform(raw: DataFrame) -> DataFrame:
        return (
            raw.transform(records_with_coordinates(KEY_FIELD[entity]))
            .transform(one_spelling_of_the_key(entity))
            .transform(keep_latest(KEY_FIELD[entity]))
            .transform(_RULES[entity])
            .transform(select_clean_columns(entity))
        )

    return transform
