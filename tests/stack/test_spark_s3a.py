"""spark-submit from the venv reads and writes s3a:// on MinIO (hadoop-aws + AWS SDK installed)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from plugins.lake_spark import s3a_conf


def test_spark_submit_reads_and_writes_s3a(stack_env, s3, scratch_bucket):
    rows = [{"k": k, "v": v} for k, v in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]]
    s3.put_object(Bucket=scratch_bucket, Key="in/rows.jsonl", Body="\n".join(json.dumps(r) for r in rows).encode())

    spark_submit = Path(sys.executable).parent / "spark-submit"
    app = Path(__file__).with_name("spark_s3a_roundtrip.py")
    conf = {
        **s3a_conf(stack_env["S3_ENDPOINT_URL"], stack_env["AWS_DEFAULT_REGION"], environment_credentials=True),
        "spark.sql.shuffle.partitions": "2",
    }
    cmd = [str(spark_submit), "--master", "local[2]"]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(app), f"s3a://{scratch_bucket}/in/", f"s3a://{scratch_bucket}/out/"]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": stack_env["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": stack_env["AWS_SECRET_ACCESS_KEY"],
    }
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket, Prefix="out/")["Contents"]]
    assert "out/_SUCCESS" in keys
    totals: dict[str, int] = {}
    for key in (k for k in keys if k.endswith(".parquet")):
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=scratch_bucket, Key=key)["Body"].read()))
        totals.update(zip(table.column("k").to_pylist(), table.column("sum(v)").to_pylist(), strict=True))
    expected: dict[str, int] = {}
    for r in rows:
        expected[r["k"]] = expected.get(r["k"], 0) + r["v"]
    assert totals == expected
