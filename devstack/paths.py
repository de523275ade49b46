"""Where the local stack keeps its files (everything under the git-ignored `.stack/`)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".stack"
VENV_BIN = Path(sys.executable).parent
PIDS = STATE / "pids"
LOGS = STATE / "logs"
SECRETS_FILE = STATE / "secrets.env"
STACK_ENV_FILE = STATE / "stack.env"

KAFKA_LIBS = STATE / "kafka" / "libs"
KAFKA_DATA = STATE / "kafka" / "data"
KAFKA_CONFIG = STATE / "kafka" / "server.properties"
KAFKA_LOG4J = STATE / "kafka" / "log4j2.properties"
MINIO_BIN = STATE / "minio" / "bin" / "minio"
MINIO_DATA = STATE / "minio" / "data"
S3A_JARS = STATE / "spark" / "jars"
SPARK_CDS_ARCHIVE = STATE / "spark" / "cds" / "spark.jsa"
AIRFLOW_HOME = STATE / "airflow"

MAVEN_DIR = Path(__file__).resolve().parent / "maven"


def pyspark_jars_dir() -> Path:
    """The jar folder of the venv's pyspark: spark-submit's class path."""
    import pyspark

    return Path(pyspark.__file__).parent / "jars"
