"""The local AWS counts every call by operation, S3's included, as a benchmark reads them."""

from __future__ import annotations

import io

from boto3.s3.transfer import TransferConfig
from mme_operator.local import LocalAWS

from tests.local.conftest import unique


def test_s3_calls_are_counted_by_operation(aws: LocalAWS) -> None:
    s3 = aws.client("s3")
    bucket = unique("counted")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/one.tar.gz", Body=b"1")
    s3.head_object(Bucket=bucket, Key="a/one.tar.gz")
    s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    s3.get_object(Bucket=bucket, Key="a/one.tar.gz")["Body"].read()
    multipart = TransferConfig(multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2)
    data = io.BytesIO(b"x" * (6 * 1024**2))
    s3.upload_fileobj(data, bucket, "a/big.tar.gz", Config=multipart)
    s3.delete_object(Bucket=bucket, Key="a/one.tar.gz")

    calls = aws.calls

    assert calls["CreateBucket"] == 1
    assert calls["PutObject"] == 1
    assert calls["HeadObject"] == 1
    assert calls["ListObjectsV2"] == 1
    assert calls["GetObject"] == 1
    assert calls["CreateMultipartUpload"] == 1
    assert calls["UploadPart"] == 2
    assert calls["CompleteMultipartUpload"] == 1
    assert calls["DeleteObject"] == 1


def test_sagemaker_and_autoscaling_calls_are_counted(aws: LocalAWS) -> None:
    aws.client("sagemaker").list_endpoints()
    aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")

    calls = aws.calls

    assert calls["ListEndpoints"] == 1
    assert calls["DescribeScalableTargets"] == 1
