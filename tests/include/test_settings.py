"""The platform's settings refuse a lake bucket or topic prefix that S3 or Kafka would refuse, naming the variable."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from include.emulator.__main__ import parse_args
from include.settings import PlatformSettings


@pytest.mark.parametrize("bucket", ["pinterest-lake", "abc", "a.b-c9", "x" * 63])
def test_a_bucket_s3_accepts_is_taken(monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    monkeypatch.setenv("LAKE_BUCKET", bucket)
    assert PlatformSettings().lake_bucket == bucket


@pytest.mark.parametrize(
    "bucket",
    ["Pinterest-Lake", "lake_1", "ab", "x" * 64, "-lake", "lake-", "a..b", "10.0.0.1", "xn--lake", "lake-s3alias",
     "lake\n", "lake bucket"],
)  # fmt: skip
def test_a_bucket_s3_refuses_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    monkeypatch.setenv("LAKE_BUCKET", bucket)
    with pytest.raises(ValidationError, match=re.escape(f"LAKE_BUCKET {bucket!r} is not an S3 bucket name")):
        PlatformSettings()


@pytest.mark.parametrize("prefix", ["pinterest", "test-abc_1.X", "p" * 244])
def test_a_topic_prefix_kafka_accepts_is_taken(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("PINTEREST_TOPIC_PREFIX", prefix)
    assert PlatformSettings().topic("user") == f"{prefix}.user"  # 249 characters at most: Kafka's limit


@pytest.mark.parametrize("prefix", ["", "my topics", "p" * 245, "pinterést", "pins/daily", "pins\n"])
def test_a_topic_prefix_kafka_refuses_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setenv("PINTEREST_TOPIC_PREFIX", prefix)
    with pytest.raises(ValidationError, match=re.escape(f"PINTEREST_TOPIC_PREFIX {prefix!r:.40}")):
        PlatformSettings()


def test_the_emulators_topic_prefix_follows_the_same_rule(capsys: pytest.CaptureFixture[str]) -> None:
    seed = ["seed-kafka", "--from", "2024-01-01", "--to", "2024-01-02", "--per-day", "1"]
    with pytest.raises(SystemExit) as exited:
        parse_args([*seed, "--topic-prefix", "my topics"])
    assert exited.value.code == 2
    assert "--topic-prefix 'my topics' is not a topic prefix" in capsys.readouterr().err
    assert parse_args([*seed, "--topic-prefix", "my-topics"]).topic_prefix == "my-topics"


def test_optional_settings_passed_through_empty_take_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # an env file or compose's ${S3_ENDPOINT_URL:-} gives '': boto3 then failed with "Invalid endpoint: ", or built
    # https://s3..amazonaws.com from an empty region, in every drain, retried, naming no variable
    optional = ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "LAKE_FIRST_DAY")
    for name in optional:
        monkeypatch.setenv(name, "")
    settings = PlatformSettings()
    assert (settings.s3_endpoint_url, settings.aws_access_key_id, settings.aws_secret_access_key) == (None, None, None)
    assert (settings.aws_region, settings.lake_first_day) == ("us-east-1", None)
    assert settings.s3_client().meta.endpoint_url == "https://s3.amazonaws.com"
