"""Pinned versions of what the local stack fetches outside pip (Maven Central, the Go module proxy)."""

KAFKA_VERSION = "4.2.1"
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# hadoop-aws must match the Hadoop client jars bundled with pyspark 4.3.0 (hadoop-client-api-3.5.0).
HADOOP_VERSION = "3.5.0"
