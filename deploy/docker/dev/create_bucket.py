"""Create the custom-gen audio bucket in the compose stack's S3 server (idempotent).

Runs in the custom-gen image (it has boto3) with custom-gen's own ``CUSTOMGEN_S3_*`` variables,
so the bucket is exactly the one the service will use. Production (Cloudflare R2) buckets are
created by the operator, not by this script.
"""

from __future__ import annotations

import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def main() -> int:
    bucket = os.environ.get("CUSTOMGEN_S3_BUCKET", "coursemesh-audio")
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["CUSTOMGEN_S3_ENDPOINT"],
        aws_access_key_id=os.environ["CUSTOMGEN_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["CUSTOMGEN_S3_SECRET_KEY"],
        region_name=os.environ.get("CUSTOMGEN_S3_REGION", "us-east-1"),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            print(f"bucket {bucket} created")
            return 0
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                print(f"bucket {bucket} exists")
                return 0
            error: Exception = exc
        except BotoCoreError as exc:  # S3 server not listening yet
            error = exc
        if time.monotonic() > deadline:
            print(f"cannot create bucket {bucket}: {error}", file=sys.stderr)
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
