"""Files of the lake through Hadoop's FileSystem API (s3a and file://): small texts, and the ``dt=`` folders'
marker files (``_SUCCESS``, ``_source.json``) found in one recursive listing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from include.lake import partition_day


def _path_on_filesystem(spark: SparkSession, url: str) -> tuple[Any, Any]:
    """Hadoop's ``Path`` of ``url`` and its ``FileSystem`` (the session's s3a settings and credentials apply)."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(url)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def exists(spark: SparkSession, url: str) -> bool:
    """Whether a file (or folder) exists at ``url``."""
    path, filesystem = _path_on_filesystem(spark, url)
    return bool(filesystem.exists(path))


def read_text(spark: SparkSession, url: str) -> str | None:
    """The UTF-8 text of one file; None if absent (no separate existence check: one request less on S3)."""
    path, filesystem = _path_on_filesystem(spark, url)
    try:
        stream = filesystem.open(path)
        try:
            return bytes(stream.readAllBytes()).decode("utf-8")
        finally:
            stream.close()
    except Py4JJavaError as error:
        if java_error_is(spark, error, "java.io.FileNotFoundException"):
            return None
        raise


def java_error_is(spark: SparkSession, error: Py4JJavaError, class_name: str) -> bool:
    """Whether the Java exception behind ``error`` is a ``class_name`` (a subclass included)."""
    return bool(spark.sparkContext._jvm.java.lang.Class.forName(class_name).isInstance(error.java_exception))


def write_text(spark: SparkSession, url: str, text: str) -> None:
    """Write (or overwrite) one small UTF-8 file."""
    path, filesystem = _path_on_filesystem(spark, url)
    stream = filesystem.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def delete(spark: SparkSession, url: str) -> None:
    """Delete one file if it is there."""
    path, filesystem = _path_on_filesystem(spark, url)
    filesystem.delete(path, False)


def file_sizes(spark: SparkSession, folder_url: str) -> dict[str, int]:
    """The size in bytes of each file directly in the folder at ``folder_url`` (ending in ``/``), by name."""
    path, filesystem = _path_on_filesystem(spark, folder_url)
    return {status.getPath().getName(): status.getLen() for status in filesystem.listStatus(path) if status.isFile()}


def markers_by_day(spark: SparkSession, dataset_url: str, markers: frozenset[str]) -> dict[date, set[str]]:
    """Per day of the ``dt=`` folders under ``dataset_url``, the files named in ``markers`` it holds.

    One recursive listing (on S3: a few LIST pages, not a request per day); empty if the dataset is absent.
    """
    path, filesystem = _path_on_filesystem(spark, dataset_url)
    if not filesystem.exists(path):
        return {}
    found: dict[date, set[str]] = {}
    files = filesystem.listFiles(path, True)
    while files.hasNext():
        file = files.next().getPath()
        if file.getName() in markers and (day := partition_day(file.getParent().getName())) is not None:
            found.setdefault(day, set()).add(file.getName())
    return found
