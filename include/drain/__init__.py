"""Kafka → S3 drain of one UTC day per entity, its manifest model, and the quality gate after it.

Nothing here imports Airflow: the DAG passes an S3 client, bootstrap servers and names.
"""

from include.drain.engine import DrainRequest, DrainResult, DrainSettings, drain
from include.drain.errors import (
    DataExpiredError,
    DrainError,
    IncompleteDayError,
    IntervalError,
    LockLostError,
    MissingBucketError,
    MissingTopicError,
    NoIntervalError,
    PartitionLockedError,
    QualityGateError,
    QuarantineThresholdError,
    SourceTopicError,
)
from include.drain.interval import Interval
from include.drain.manifest import Manifest
from include.drain.quality import QualityThresholds, run_quality_gate

__all__ = [
    "DataExpiredError",
    "DrainError",
    "DrainRequest",
    "DrainResult",
    "DrainSettings",
    "IncompleteDayError",
    "Interval",
    "IntervalError",
    "LockLostError",
    "Manifest",
    "MissingBucketError",
    "MissingTopicError",
    "NoIntervalError",
    "PartitionLockedError",
    "QualityGateError",
    "QualityThresholds",
    "QuarantineThresholdError",
    "SourceTopicError",
    "drain",
    "run_quality_gate",
]
