"""Layout of the lake: every S3 key and URL of the platform is built here.

```
raw/<entity>/dt=YYYY-MM-DD/<objects>  + _manifest.json + _SUCCESS (written last)
quarantine/<entity>/dt=YYYY-MM-DD/...
clean/<entity>/dt=YYYY-MM-DD/          Parquet + _SUCCESS + _source.json (the raw data it was cleaned from)
analytics/<query>/dt=YYYY-MM-DD/       Parquet
analytics/_published/dt=YYYY-MM-DD/_manifest.json   the day's nine results as one unit (written after them)
_locks/<job>/dt=YYYY-MM-DD/lease       the lease of a Spark job's day (outside the folders it overwrites)
```
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Literal

Zone = Literal["raw", "quarantine", "clean", "analytics"]
RawStatus = Literal["complete", "partial"]

MANIFEST_NAME = "_manifest.json"
SUCCESS_NAME = "_SUCCESS"
DQ_NAME = "_dq.json"
LOCK_NAME = "_drain.lock"
SOURCE_NAME = "_source.json"
PUBLISHED_NAME = "_published"  # beside the results under analytics/, and no result's name (those have no "_")

# S3's bucket naming rules, as a JSON-schema pattern (the DAG's param) that re.search also applies (the settings)
S3_BUCKET_PATTERN = (
    r"^(?!.*\n)"  # one line: JSON schema matches with re.search, whose $ also matches before a final newline
    r"(?!xn--|sthree-|amzn-s3-demo-)"  # reserved prefixes
    r"(?!.*(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)"  # reserved suffixes
    r"(?!.*\.\.)"  # no two adjacent periods
    r"(?!\d+\.\d+\.\d+\.\d+$)"  # not an IP address
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"  # 3-63 lowercase letters, digits, dots, hyphens; a letter or digit at each end
)


def partition_prefix(zone: Zone, name: str, day: date) -> str:
    """Key prefix of one daily partition, ending in ``/``."""
    return f"{dataset_prefix(zone, name)}dt={day.isoformat()}/"


def partition_day(name: str) -> date | None:
    """The day of a ``dt=YYYY-MM-DD`` folder name; None for any other name."""
    if not name.startswith("dt="):
        return None
    try:
        return date.fromisoformat(name.removeprefix("dt="))
    except ValueError:
        return None


def zone_prefix(zone: Zone) -> str:
    """Key prefix of a whole zone of the lake, ending in ``/``."""
    return f"{zone}/"


def dataset_prefix(zone: Zone, name: str) -> str:
    """Key prefix of all partitions of one dataset, ending in ``/``."""
    return f"{zone_prefix(zone)}{name}/"


def manifest_key(entity: str, day: date) -> str:
    """Key of the raw partition's manifest."""
    return partition_prefix("raw", entity, day) + MANIFEST_NAME


def success_key(entity: str, day: date) -> str:
    """Key of the raw partition's completeness marker."""
    return partition_prefix("raw", entity, day) + SUCCESS_NAME


def dq_key(entity: str, day: date) -> str:
    """Key of the raw partition's data-quality report."""
    return partition_prefix("raw", entity, day) + DQ_NAME


def publication_key(day: date) -> str:
    """Key of the manifest that publishes the analytics of ``day`` as one unit."""
    return partition_prefix("analytics", PUBLISHED_NAME, day) + MANIFEST_NAME


def lock_key(entity: str, day: date) -> str:
    """Key of the lease that keeps two drains of the same raw partition apart."""
    return partition_prefix("raw", entity, day) + LOCK_NAME


def job_lock_key(job: str, day: date) -> str:
    """Key of the lease that keeps two Spark jobs (``clean-<entity>``, ``analytics``) off the same day."""
    return f"_locks/{job}/dt={day.isoformat()}/lease"


def s3a_url(bucket: str, key: str) -> str:
    """``s3a://`` URL of a key, as Spark reads it."""
    return f"s3a://{bucket}/{key}"


def day_status(statuses: Iterable[str]) -> RawStatus:
    """The status of data made from several raw partitions: ``complete`` only when each of them is."""
    known = set(statuses)
    if not known or not known <= {"complete", "partial"}:
        raise ValueError(f"expected raw statuses complete or partial, got {sorted(known)}")
    return "complete" if known == {"complete"} else "partial"
