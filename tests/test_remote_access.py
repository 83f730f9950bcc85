"""Credentials the store refuses, and permissions they lack: one line, exit 2, nothing written.

moto enforces IAM only when told to (`moto_enforcing_iam`): meanwhile the
test keys are unknown to it, and an IAM user made for the test may only
list and read the bucket. fake-gcs-server has no authorization at all, so
these run on S3 only.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURE_MODELS, assert_one_line_error, run_cli
from tests.remote_servers import BUCKET, Store, moto_enforcing_iam

READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        }
    ],
}


@pytest.fixture(scope="module")
def reader(s3_store: Store) -> dict[str, str]:
    """The environment of an IAM user who may list and read the bucket, nothing more."""
    import boto3

    iam = boto3.client("iam", endpoint_url=s3_store.env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    iam.create_user(UserName="smsurgery-reader")
    iam.put_user_policy(UserName="smsurgery-reader", PolicyName="read", PolicyDocument=json.dumps(READ_ONLY))
    key = iam.create_access_key(UserName="smsurgery-reader")["AccessKey"]
    return {**s3_store.env, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.fixture
def base(s3_store: Store) -> str:
    """tf2_module in the bucket."""
    return s3_store.upload(FIXTURE_MODELS / "tf2_module", s3_store.prefix())


def _enforcing(store: Store):
    return moto_enforcing_iam(store.env["AWS_ENDPOINT_URL"])


def _rename_into(source: str, out: str, env: dict[str, str]):
    return run_cli("signature", "rename", f"{source}@1", "serving_default", "renamed", "--out", out, "--no-verify",
                   env=env)  # fmt: skip


def test_refused_credentials_stop_a_read_and_a_write_in_one_line(s3_store: Store, base: str) -> None:
    out = s3_store.prefix("out")
    with _enforcing(s3_store):  # the test keys: moto does not know them meanwhile
        shown = run_cli("show", base, env=s3_store.env)
        written = _rename_into(base, out, s3_store.env)
    assert_one_line_error(shown, "access denied", base, "refused the credentials")
    assert_one_line_error(written, "access denied", "refused the credentials")
    assert "testing" not in shown.stderr + written.stderr  # no key, no secret printed
    assert s3_store.keys(out) == {}


def test_a_write_without_permission_stops_in_one_line_and_writes_nothing(
    s3_store: Store, base: str, reader: dict[str, str]
) -> None:
    before, out = s3_store.keys(base), s3_store.prefix("out")
    with _enforcing(s3_store):
        shown = run_cli("show", base, env=reader)
        written = _rename_into(base, out, reader)
        into_source = _rename_into(base, base, reader)  # into the source base: no version 2 appears
    assert shown.code == 0, shown.stderr  # reading is allowed
    assert_one_line_error(written, "access denied", out)
    assert_one_line_error(into_source, "access denied", base)
    assert s3_store.keys(out) == {} and s3_store.keys(base) == before
