"""What the S3 functional tests share (a helper module, not a test file):
a boto3 client for the all-in-one proxy and the S3 code of a failure."""
import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


def make_client(url, key='test:tester', secret='testing', **config):
    """A path-style boto3 S3 client that never retries (a retry would
    hide the answer under test)."""
    return boto3.client(
        's3', endpoint_url=url, aws_access_key_id=key,
        aws_secret_access_key=secret, region_name='us-east-1',
        config=Config(s3={'addressing_style': 'path'},
                      retries={'max_attempts': 1}, **config))


def error_code(call, *args, **kwargs):
    """The S3 error code ``call(*args, **kwargs)`` fails with."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response['Error']['Code']
