"""Create the lake bucket (``LAKE_BUCKET``) when missing: the `minio-init` service of docker-compose.yaml."""

from __future__ import annotations

import sys

from botocore.exceptions import ClientError

from include.settings import PlatformSettings


def main() -> None:
    settings = PlatformSettings()
    if settings.aws_access_key_id is None or settings.aws_secret_access_key is None:
        raise SystemExit("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set (the MinIO root credentials)")
    s3 = settings.s3_client()
    try:
        s3.create_bucket(Bucket=settings.lake_bucket)
        state = "created"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
        state = "exists"
    print(f"bucket {settings.lake_bucket}: {state}", file=sys.stderr)


if __name__ == "__main__":
    main()
