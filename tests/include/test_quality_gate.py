"""The quality gate on drained partitions in the real MinIO; expectations come from what the test produced."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from array import array
from datetime import UTC, date, datetime

import numpy as np
import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Producer

from include import lake
from include.drain import DrainRequest, Interval, QualityGateError, QualityThresholds, drain, run_quality_gate
from include.drain.errors import ManifestChangedError
from include.drain.quality import FolderObjects, QualityReport, check_day, distinct_int64, match_rate
from include.emulator.generate import IND_STRIDE, generate_triples
from include.emulator.local_lake import drain_manifest, file_entry
from include.records import ENTITIES, kafka_key, kafka_value
from include.settings import PlatformSettings

DAY = date(2024, 5, 1)
START_MS = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)


def produce_triples(bootstrap: str, prefix: str, count: int, seed: int, skip_geo_of: set[int] = frozenset()) -> dict:
    """Produce ``count`` triples (about 3 % repeated, as the emulator does); return keys and inds per entity."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    sent: dict[str, dict[str, list]] = {e: {"keys": [], "inds": []} for e in ENTITIES}
    for i, triple in enumerate(generate_triples(seed, count)):
        for entity in ENTITIES:
            if entity == "geo" and triple.geo.ind in skip_geo_of:
                continue
            record = triple.record(entity)
            producer.produce(
                f"{prefix}.{entity}",
                key=kafka_key(entity, record),
                value=kafka_value(record),
                timestamp=START_MS + i * 1000,
            )
            sent[entity]["keys"].append(kafka_key(entity, record).decode())
            sent[entity]["inds"].append(triple.pin.index)
        producer.poll(0)
    assert producer.flush(30) == 0
    return sent


def drain_all(s3, bootstrap: str, prefix: str, bucket: str) -> None:
    for entity in ENTITIES:
        drain(s3, bootstrap, DrainRequest(entity, f"{prefix}.{entity}", bucket, Interval.for_day(DAY), "drain-run"))


def read_dq(s3, bucket: str, entity: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=lake.dq_key(entity, DAY))["Body"].read())


def manifest_sha256(s3, bucket: str, entity: str) -> str:
    return hashlib.sha256(s3.get_object(Bucket=bucket, Key=lake.manifest_key(entity, DAY))["Body"].read()).hexdigest()


def test_gate_reports_counts_duplicates_and_ind_match(s3, scratch_bucket, kafka_topics, stack_env):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    sent = produce_triples(bootstrap, kafka_topics, 400, seed=3)
    drain_all(s3, bootstrap, kafka_topics, scratch_bucket)

    reports = run_quality_gate(s3, scratch_bucket, DAY, "gate-run")

    for entity in ENTITIES:
        keys = sent[entity]["keys"]
        dq = read_dq(s3, scratch_bucket, entity)
        assert dq["passed"] and dq["failures"] == [] and dq["manifest_run_id"] == "drain-run"
        assert dq["manifest_sha256"] == manifest_sha256(s3, scratch_bucket, entity)  # the manifest write it checked
        metrics = dq["metrics"]
        assert metrics["record_count"] == len(keys)
        assert metrics["duplicate_keys"] == len(keys) - len(set(keys)) > 0
        assert metrics["distinct_ind"] == len(set(sent[entity]["inds"]))
        assert metrics["ind_match_rate"] == 1.0 and metrics["quarantine_share"] == 0.0 and metrics["late_records"] == 0
        assert reports[entity].passed


def test_gate_fails_a_day_above_its_duplicate_and_quarantine_thresholds_and_passes_one_at_them(
    s3, scratch_bucket, kafka_topics, stack_env
):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    sent = produce_triples(bootstrap, kafka_topics, 200, seed=5)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(2):  # within the drain's 1 % of invalid messages: quarantined, and the day committed
        producer.produce(f"{kafka_topics}.pin", key=b"poison", value=b"{not json", timestamp=START_MS + i)
    assert producer.flush(30) == 0
    drain_all(s3, bootstrap, kafka_topics, scratch_bucket)
    keys = sent["user"]["keys"]
    duplicate_share = (len(keys) - len(set(keys))) / len(keys)
    quarantine_share = 2 / (len(sent["pin"]["keys"]) + 2)
    assert duplicate_share > 0

    at = QualityThresholds(max_duplicate_key_share=duplicate_share, max_quarantine_share=quarantine_share)
    assert run_quality_gate(s3, scratch_bucket, DAY, "gate-run", at)["pin"].passed
    below = QualityThresholds(
        max_duplicate_key_share=duplicate_share * 0.99, max_quarantine_share=quarantine_share * 0.99
    )
    with pytest.raises(QualityGateError) as failure:
        run_quality_gate(s3, scratch_bucket, DAY, "gate-run", below)

    user, pin = read_dq(s3, scratch_bucket, "user"), read_dq(s3, scratch_bucket, "pin")
    assert user["failures"] == [f"duplicate_key_share {duplicate_share:.4f} > {duplicate_share * 0.99}"]
    assert f"quarantine_share {quarantine_share:.4f} > {quarantine_share * 0.99}" in pin["failures"]
    assert pin["metrics"]["quarantined"] == 2 and "duplicate_key_share" in str(failure.value)


def test_gate_fails_above_thresholds_and_on_tampered_objects(s3, scratch_bucket, kafka_topics, stack_env):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    first_ind = 3 * IND_STRIDE  # generate_triples(seed=3) numbers new triples from seed * IND_STRIDE
    sent = produce_triples(bootstrap, kafka_topics, 100, seed=3, skip_geo_of={first_ind + i for i in range(20)})
    drain_all(s3, bootstrap, kafka_topics, scratch_bucket)
    pin_inds = set(sent["pin"]["inds"])
    expected_rate = len(pin_inds & set(sent["geo"]["inds"])) / len(pin_inds)
    manifest = json.loads(s3.get_object(Bucket=scratch_bucket, Key=lake.manifest_key("user", DAY))["Body"].read())
    tampered = manifest["files"][0]["key"]
    body = s3.get_object(Bucket=scratch_bucket, Key=tampered)["Body"].read()
    s3.put_object(Bucket=scratch_bucket, Key=tampered, Body=body.replace(b'"first_name":"', b'"first_name":"X', 1))

    with pytest.raises(QualityGateError, match=r"pin: ind_match_rate .* < 0\.95") as failure:
        run_quality_gate(s3, scratch_bucket, DAY, "gate-run", QualityThresholds(min_ind_match_rate=0.95))

    assert tampered in str(failure.value)
    pin = read_dq(s3, scratch_bucket, "pin")
    assert not pin["passed"] and pin["metrics"]["ind_match_rate"] == pytest.approx(expected_rate)
    assert read_dq(s3, scratch_bucket, "geo")["metrics"]["ind_match_rate"] == 1.0
    assert any(tampered in f for f in read_dq(s3, scratch_bucket, "user")["failures"])


def test_gate_names_an_unreadable_line_and_a_too_small_day_and_still_reports_every_entity(
    s3, scratch_bucket, kafka_topics, stack_env
):
    sent = produce_triples(stack_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_topics, 30, seed=4)
    drain_all(s3, stack_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_topics, scratch_bucket)
    manifest = json.loads(s3.get_object(Bucket=scratch_bucket, Key=lake.manifest_key("pin", DAY))["Body"].read())
    broken = manifest["files"][0]["key"]
    body = s3.get_object(Bucket=scratch_bucket, Key=broken)["Body"].read()
    s3.put_object(Bucket=scratch_bucket, Key=broken, Body=b"not json at all" + body[body.index(b"\n") :])

    with pytest.raises(QualityGateError) as failure:
        run_quality_gate(s3, scratch_bucket, DAY, "gate-run", QualityThresholds(min_records=31, min_ind_match_rate=0))

    assert f"{broken} line 1 is not a raw record line" in str(failure.value)
    for entity in ENTITIES:
        report = read_dq(s3, scratch_bucket, entity)
        count = len(sent[entity]["keys"])
        assert not report["passed"] and f"record_count {count} < min_records 31" in report["failures"]


def test_gate_without_a_drained_partition_says_what_is_missing(s3, scratch_bucket):
    with pytest.raises(QualityGateError, match=r"no manifest at .*raw/pin/dt=2024-05-01/_manifest.json"):
        run_quality_gate(s3, scratch_bucket, DAY, "gate-run")


def test_match_rate_is_the_share_found_in_every_other_entity():
    assert match_rate(np.array([1, 2, 3, 4]), [np.array([1, 2, 3]), np.array([2, 3, 4])]) == 0.5
    assert match_rate(np.array([2, 5]), [np.array([1, 2, 3])]) == 0.5
    assert match_rate(np.array([], dtype=np.int64), [np.array([1])]) is None


def test_distinct_values_are_counted_once_whatever_their_order():
    assert distinct_int64(array("q", [5, -1, 5, 2**63 - 1, -(2**63), -1])).tolist() == [-(2**63), -1, 5, 2**63 - 1]
    assert distinct_int64(array("q", [7])).tolist() == [7]
    assert distinct_int64(array("q")).tolist() == []


def test_gate_lets_an_s3_failure_through_for_a_retry_instead_of_failing_the_data(s3, scratch_bucket, stack_env):
    refused = PlatformSettings.model_validate({**stack_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}).s3_client()

    with pytest.raises(ClientError) as raised:  # not QualityGateError, which fails the run without retries
        run_quality_gate(refused, scratch_bucket, DAY, "gate-run")
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


class CommitsAnotherDrainOnFirstPinRead:
    """The real S3 client, except that the first read of a pin object first lets another drain of the day commit."""

    def __init__(self, s3, other_drain) -> None:
        self._s3, self._other_drain, self.interleaved = s3, other_drain, False

    def __getattr__(self, name: str):
        return getattr(self._s3, name)

    def get_object(self, **kwargs):
        if not self.interleaved and kwargs["Key"].startswith("raw/pin/") and kwargs["Key"].endswith(".jsonl"):
            self.interleaved = True
            self._other_drain()
        return self._s3.get_object(**kwargs)


def test_a_manifest_replaced_during_the_gate_is_a_retry_not_a_data_failure(s3, scratch_bucket, kafka_topics, stack_env):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    produce_triples(bootstrap, kafka_topics, 50, seed=3)
    drain_all(s3, bootstrap, kafka_topics, scratch_bucket)
    sent_later = produce_triples(bootstrap, kafka_topics, 10, seed=4)
    request = DrainRequest("pin", f"{kafka_topics}.pin", scratch_bucket, Interval.for_day(DAY), "other-run")
    racing = CommitsAnotherDrainOnFirstPinRead(s3, lambda: drain(s3, bootstrap, request))

    # the other run's commit deletes the objects of the manifest the gate is reading
    with pytest.raises(ManifestChangedError, match=r"raw/pin/dt=2024-05-01/_manifest.json changed"):
        run_quality_gate(racing, scratch_bucket, DAY, "gate-run")

    assert racing.interleaved
    assert not any(s3.list_objects_v2(Bucket=scratch_bucket, Prefix=lake.dq_key(e, DAY))["KeyCount"] for e in ENTITIES)
    reports = run_quality_gate(s3, scratch_bucket, DAY, "gate-retry", QualityThresholds(min_ind_match_rate=0.5))
    assert reports["pin"].manifest_run_id == "other-run"
    assert reports["pin"].metrics.record_count == 50 + len(sent_later["pin"]["keys"])


def test_each_manifest_write_gets_a_report_naming_it(s3, scratch_bucket, kafka_topics, stack_env):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    produce_triples(bootstrap, kafka_topics, 20, seed=3)
    drain_all(s3, bootstrap, kafka_topics, scratch_bucket)
    first = run_quality_gate(s3, scratch_bucket, DAY, "gate-run")["pin"]
    request = DrainRequest("pin", f"{kafka_topics}.pin", scratch_bucket, Interval.for_day(DAY), "rerun")

    drain(s3, bootstrap, request)  # the same records: the same objects, a manifest with other run metadata

    kept = s3.get_object(Bucket=scratch_bucket, Key=lake.dq_key("pin", DAY))["Body"].read()
    assert QualityReport.model_validate_json(kept).manifest_sha256 == first.manifest_sha256  # names the replaced one
    assert first.manifest_sha256 != manifest_sha256(s3, scratch_bucket, "pin")
    again = run_quality_gate(s3, scratch_bucket, DAY, "gate-rerun")["pin"]
    assert (again.manifest_run_id, again.manifest_sha256) == ("rerun", manifest_sha256(s3, scratch_bucket, "pin"))
    assert again.manifest_sha256 != first.manifest_sha256 and again.metrics == first.metrics


def test_a_gzipped_object_is_checked_as_spark_reads_it_and_a_cut_one_is_named(tmp_path):
    lines = [{"partition": 0, "offset": n, "timestamp": 0, "key": str(n), "value": {"ind": n}} for n in range(3)]
    data = gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())
    key = lake.partition_prefix("raw", "geo", DAY) + "part-0.jsonl.gz"
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(data)
    manifest = drain_manifest("geo", DAY, [file_entry(key, data, 0, [0, 1, 2])])
    (tmp_path / lake.manifest_key("geo", DAY)).write_bytes(manifest.to_json())

    report = check_day(FolderObjects(tmp_path), DAY, "gate-run", entities=["geo"])["geo"]

    assert report.passed and (report.metrics.record_count, report.metrics.distinct_ind) == (3, 3)
    cut = data[: len(data) // 2]
    (tmp_path / key).write_bytes(cut)
    (tmp_path / lake.manifest_key("geo", DAY)).write_bytes(
        drain_manifest("geo", DAY, [file_entry(key, cut, 0, [0, 1, 2])]).to_json()
    )
    with pytest.raises(QualityGateError, match=f"{key} is not a whole gzip stream"):
        check_day(FolderObjects(tmp_path), DAY, "gate-run", entities=["geo"])


def raw_lines(count: int) -> bytes:
    lines = [{"partition": 0, "offset": n, "timestamp": 0, "key": str(n), "value": {"ind": n}} for n in range(count)]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def gate_geo_folder(folder, data: bytes, offsets: list[int], record_count: int | None = None) -> list[str]:
    """Check a geo day of one object holding ``data`` whose manifest entry lists ``offsets``; the failures."""
    key = lake.partition_prefix("raw", "geo", DAY) + "part-0.jsonl"
    (folder / key).parent.mkdir(parents=True, exist_ok=True)
    (folder / key).write_bytes(data)
    manifest = drain_manifest("geo", DAY, [file_entry(key, data, 0, offsets)])
    if record_count is not None:
        manifest = manifest.model_copy(update={"record_count": record_count})
    (folder / lake.manifest_key("geo", DAY)).write_bytes(manifest.to_json())
    with pytest.raises(QualityGateError):
        check_day(FolderObjects(folder), DAY, "gate-run", entities=["geo"])
    return QualityReport.model_validate_json((folder / lake.dq_key("geo", DAY)).read_bytes()).failures


def test_an_object_whose_last_line_is_cut_is_named_as_such(tmp_path):
    data = raw_lines(3)[:-1]  # its size and checksum are the manifest's: only the missing newline tells
    key = lake.partition_prefix("raw", "geo", DAY) + "part-0.jsonl"

    failures = gate_geo_folder(tmp_path, data, [0, 1, 2])

    assert f"{key} does not end with a newline" in failures


def test_an_object_holding_other_lines_than_its_entry_counts_is_named_with_both_counts(tmp_path):
    data = raw_lines(3)  # size and checksum match the entry, which counts 2 records
    key = lake.partition_prefix("raw", "geo", DAY) + "part-0.jsonl"
    digest = hashlib.sha256(data).hexdigest()

    failures = gate_geo_folder(tmp_path, data, [0, 1])

    assert failures == [
        f"{key} holds 3 lines, {len(data)} bytes, sha256 {digest[:12]}…; the manifest says 2, {len(data)}, "
        f"{digest[:12]}…",
        "objects hold 3 records, the manifest says 2",
    ]


NOT_RAW_RECORD_LINES = {
    "not JSON": b"not json at all",
    "invalid UTF-8 in a field the gate skips": b'{"partition": 0, "offset": 1, "timestamp": 0, "key": "1", '
    b'"value": {"ind": 1, "country": "\xff"}}',
    "no key": b'{"partition": 0, "offset": 1, "timestamp": 0, "value": {"ind": 1}}',
    "a value that is no object": b'{"partition": 0, "offset": 1, "timestamp": 0, "key": "1", "value": [1]}',
    "a key that is a list": b'{"partition": 0, "offset": 1, "timestamp": 0, "key": [1], "value": {"ind": 1}}',
    "text after the object": b'{"partition": 0, "offset": 1, "timestamp": 0, "key": "1", "value": {"ind": 1}} x',
    "a syntax error in a field the gate skips": b'{"partition": 0, "offset": 1, "timestamp": 0, "key": "1", '
    b'"value": {"ind": 1, "country": [1,}}',
    "an array": b"[1]",
}


@pytest.mark.parametrize("line", NOT_RAW_RECORD_LINES.values(), ids=NOT_RAW_RECORD_LINES.keys())
def test_a_line_that_is_no_raw_record_line_is_named_by_its_number(tmp_path, line: bytes):
    first, _, last = raw_lines(3).splitlines(keepends=True)
    data = first + line + b"\n" + last
    key = lake.partition_prefix("raw", "geo", DAY) + "part-0.jsonl"

    failures = gate_geo_folder(tmp_path, data, [0, 1, 2])

    assert len(failures) == 1 and failures[0].startswith(f"{key} line 2 is not a raw record line ("), failures


def test_a_null_key_counts_as_a_key_and_an_ind_that_is_no_integer_is_left_out_of_the_match(tmp_path):
    lines = [{"key": "a", "value": {"ind": 1}}, {"key": None, "value": {"ind": "2"}}, {"key": "a", "value": {}},
             {"key": None, "value": {"ind": 3, "country": "Fran\u00e7e"}}]  # fmt: skip
    data = "".join(json.dumps({"partition": 0, "offset": n, "timestamp": 0, **line}) + "\n" for n, line in
                   enumerate(lines)).encode()  # fmt: skip
    key = lake.partition_prefix("raw", "geo", DAY) + "part-0.jsonl"
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(data)
    manifest = drain_manifest("geo", DAY, [file_entry(key, data, 0, [0, 1, 2, 3])])
    (tmp_path / lake.manifest_key("geo", DAY)).write_bytes(manifest.to_json())

    metrics = check_day(FolderObjects(tmp_path), DAY, "gate-run", entities=["geo"])["geo"].metrics

    assert (metrics.record_count, metrics.distinct_keys, metrics.duplicate_keys, metrics.distinct_ind) == (4, 2, 2, 2)


def test_a_manifest_whose_record_count_is_not_its_objects_total_fails(tmp_path):
    failures = gate_geo_folder(tmp_path, raw_lines(3), [0, 1, 2], record_count=4)

    assert failures == ["objects hold 3 records, the manifest says 4"]


def test_a_missing_object_is_named_and_not_taken_for_duplicates(tmp_path):
    prefix = lake.partition_prefix("raw", "geo", DAY)
    kept, lost = raw_lines(4).splitlines(keepends=True)[:1], raw_lines(4).splitlines(keepends=True)[1:]
    entries = [file_entry(prefix + "part-0.jsonl", b"".join(kept), 0, [0]),
               file_entry(prefix + "part-1.jsonl", b"".join(lost), 0, [1, 2, 3])]  # fmt: skip
    (tmp_path / prefix).mkdir(parents=True)
    (tmp_path / prefix / "part-0.jsonl").write_bytes(b"".join(kept))  # part-1 is gone
    (tmp_path / lake.manifest_key("geo", DAY)).write_bytes(drain_manifest("geo", DAY, entries).to_json())

    with pytest.raises(QualityGateError):
        check_day(FolderObjects(tmp_path), DAY, "gate-run", entities=["geo"])
    report = QualityReport.model_validate_json((tmp_path / lake.dq_key("geo", DAY)).read_bytes())

    assert any(prefix + "part-1.jsonl" in failure for failure in report.failures), report.failures
    assert "objects hold 1 records, the manifest says 4" in report.failures
    assert not any("duplicate" in failure for failure in report.failures), report.failures  # the 4 keys differ
    assert (report.metrics.duplicate_keys, report.metrics.duplicate_key_share) == (0, 0.0)


def test_a_manifest_the_drain_did_not_write_fails_the_gate_naming_it(tmp_path):
    key = lake.manifest_key("geo", DAY)
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(b'{"format_version": 1}')

    # a QualityGateError (no retry): a pydantic error named neither the object nor what to do
    objects = FolderObjects(tmp_path)
    named = rf"{re.escape(objects.url(key))} is not a manifest the drain wrote \(\d+ problems"
    with pytest.raises(QualityGateError, match=named):
        check_day(objects, DAY, "gate-run", entities=["geo"])
