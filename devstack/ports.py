"""Loopback ports of the local stack."""

PORTS: dict[str, int] = {
    "kafka": 9092,
    "kafka-controller": 9093,
    "minio": 9000,
    "minio-console": 9001,
    "airflow": 8080,
    "api": 8000,
}
