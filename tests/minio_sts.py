"""Temporary S3 credentials with a session token from the stack's MinIO (STS `AssumeRole`), as AWS gives a role."""

from __future__ import annotations

import boto3

ROLE_ARN = "arn:aws:iam::000000000000:role/lake"  # MinIO's AssumeRole takes the caller's own rights, whatever role


def temporary_credentials(stack_env: dict[str, str], seconds: int = 900) -> dict[str, str]:
    """``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN`` of a role session on MinIO."""
    sts = boto3.client(
        "sts",
        endpoint_url=stack_env["S3_ENDPOINT_URL"],
        region_name=stack_env["AWS_DEFAULT_REGION"],
        aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack_env["AWS_SECRET_ACCESS_KEY"],
    )
    issued = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="tests", DurationSeconds=seconds)["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
        "AWS_SESSION_TOKEN": issued["SessionToken"],
    }
