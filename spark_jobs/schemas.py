"""Spark schemas of the raw lake, derived from the pydantic record models (the single source of truth)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrameReader, SparkSession
from pyspark.sql.types import (
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from include.records import MODELS, Entity

_JSON_TO_SPARK: dict[str, DataType] = {
    "integer": LongType(),
    "number": DoubleType(),
    "string": StringType(),
}


def _spark_type(name: str, prop: dict[str, Any]) -> DataType:
    """Spark type of one JSON-schema property (``anyOf`` with ``null`` means optional)."""
    kinds = [option["type"] for option in prop["anyOf"]] if "anyOf" in prop else [prop["type"]]
    non_null = [kind for kind in kinds if kind != "null"]
    if len(non_null) != 1 or non_null[0] not in _JSON_TO_SPARK:
        raise TypeError(f"record field {name!r} has JSON type {kinds}, which has no Spark mapping")
    return _JSON_TO_SPARK[non_null[0]]


def record_schema(entity: Entity) -> StructType:
    """Schema of one record as posted (the ``value`` of a raw line), from ``include.records``."""
    properties = MODELS[entity].model_json_schema()["properties"]
    return StructType([StructField(name, _spark_type(name, prop), nullable=True) for name, prop in properties.items()])


def raw_line_schema(entity: Entity) -> StructType:
    """Schema of one raw JSON line: the Kafka coordinates and the record."""
    return StructType(
        [
            StructField("partition", LongType(), nullable=True),
            StructField("offset", LongType(), nullable=True),
            StructField("timestamp", LongType(), nullable=True),
            StructField("key", StringType(), nullable=True),
            StructField("value", record_schema(entity), nullable=True),
        ]
    )


RAW_JSON_OPTIONS = {
    "mode": "FAILFAST",  # a line Spark cannot read stops the job: no record is dropped unseen
    # Jackson refuses a number of more than 1,000 characters by default; pydantic (the API, the drain) reads
    # one ("45.000…0" from a producer other than the API), so such a line would stop its day's cleaning.
    "maxNumLen": str(2**31 - 1),
    # likewise a string of more than 20,000,000 UTF-16 units (10,000,001 emoji are enough), which pydantic reads
    "maxStringLen": str(2**31 - 1),
}


def raw_line_reader(spark: SparkSession, entity: Entity) -> DataFrameReader:
    """A reader of raw JSON lines of ``entity`` with their schema, reading every line the drain accepted."""
    return spark.read.schema(raw_line_schema(entity)).options(**RAW_JSON_OPTIONS)
