"""The installed pyspark is one version throughout: its Python files are its own and match its JVM jars."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re

import pyspark

from devstack import paths


def test_pyspark_python_version_is_the_version_of_its_spark_jars() -> None:
    jars = [p.name for p in paths.pyspark_jars_dir().glob("spark-core_*.jar")]
    assert len(jars) == 1, jars
    match = re.fullmatch(r"spark-core_[\d.]+-(?P<version>.+)\.jar", jars[0])
    assert match is not None, jars[0]
    assert pyspark.__version__ == match["version"]


def test_every_python_file_of_pyspark_is_the_one_its_wheel_installed() -> None:
    files = [f for f in importlib.metadata.distribution("pyspark").files or () if f.suffix == ".py" and f.hash]
    assert files
    changed = []
    for file in files:
        digest = hashlib.new(file.hash.mode, file.locate().read_bytes()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != file.hash.value:
            changed.append(str(file))
    assert changed == []
