"""The lake's datasets as Airflow Assets, per bucket, and the aliases the daily DAG's tasks emit them through.

A run may write to another bucket than the default (run conf ``lake_bucket``). Its tasks therefore
declare an AssetAlias as outlet and, once their data is written, add an event for the Asset of the
bucket they actually wrote: a DAG scheduled on the default bucket's Asset is not triggered by a run
that wrote elsewhere. Assets of the default bucket keep the names ``pinterest_<zone>[_<name>]``;
those of other buckets are named by their URI (Airflow creates them on their first event).

Every event carries the day (``dt``), the bucket and the ``status`` of the raw data (``complete`` or
``partial``); a raw partition's event is emitted once the day has passed the quality gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.sdk import Asset, AssetAlias

from include import lake
from include.settings import platform_settings

GROUP = "pinterest"


def lake_asset(bucket: str, zone: lake.Zone, name: str | None = None) -> Asset:
    """The Asset of ``s3://<bucket>/<zone>[/<name>]``."""
    path = zone if name is None else lake.dataset_prefix(zone, name).rstrip("/")
    uri = f"s3://{bucket}/{path}"
    if bucket != platform_settings().lake_bucket:
        return Asset(uri=uri, group=GROUP)
    return Asset(name="_".join(filter(None, ("pinterest", zone, name))), uri=uri, group=GROUP)


def lake_alias(zone: lake.Zone, name: str | None = None) -> AssetAlias:
    """The alias through which a task emits the ``<zone>[/<name>]`` Asset of the bucket it wrote."""
    return AssetAlias("_".join(filter(None, ("pinterest", zone, name, "any_bucket"))), group=GROUP)


def emit(context: Any, alias: AssetAlias, assets: Iterable[Asset], extra: dict[str, Any]) -> None:
    """Add an event carrying ``extra`` for each of ``assets`` to the running task's ``alias`` outlet."""
    events = context["outlet_events"][alias]
    for asset in assets:
        events.add(asset, extra=extra)
