"""Loopback ports of the local stack."""

PORTS: dict[str, int] = {
    "kafka": 9092,
    "kafka-controller": 9093,
    "minio": 9000,
    "minio-console": 9001,
    "airflow": 8080,
    "api": 8000,
}

# The scheduler's health check server (ENABLE_HEALTH_CHECK). Not in PORTS, which docker-compose.yaml publishes too.
AIRFLOW_SCHEDULER_HEALTH = 8974
