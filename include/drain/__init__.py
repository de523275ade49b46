"""Kafka → S3 drain of one UTC day per entity, its manifest model, and the quality gate after it.

Nothing here imports Airflow: the DAG passes an S3 client, a Kafka client config (its connection's extra) and
names. The names below are loaded when first used, so a reader of one module (the Spark jobs read the gate's report
and take the lease) does not import the Kafka client with the engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    **dict.fromkeys(["DrainRequest", "DrainResult", "DrainSettings", "drain"], "engine"),
    **dict.fromkeys(
        [
            "BadManifestError",
            "BucketRefusedError",
            "CompactedTopicError",
            "DataExpiredError",
            "DrainError",
            "IncompleteDayError",
            "IntervalError",
            "KafkaConfigError",
            "KafkaReadError",
            "LockLostError",
            "ManifestChangedError",
            "MissingBucketError",
            "MissingTopicError",
            "NoIntervalError",
            "OpenTransactionError",
            "PartitionLockedError",
            "QualityGateError",
            "QuarantineThresholdError",
            "SourceTopicError",
            "TopicError",
            "UnknownConfError",
        ],
        "errors",
    ),
    "Interval": "interval",
    "ClientConfig": "kafka_reader",
    "Manifest": "manifest",
    **dict.fromkeys(["QualityThresholds", "run_quality_gate"], "quality"),
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    """``include.drain.<name>``, imported from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
