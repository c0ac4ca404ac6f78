"""What the Python peers share that is not the wire format: AWS clients
from the environment, attributes to and from JSON, and failing loudly."""

import base64
import os
import sys

import boto3


def fail(message):
    """Print message on stderr and exit 1: the Go test shows stderr."""
    print(message, file=sys.stderr, flush=True)
    sys.exit(1)


def client(service, session=None):
    """A boto3 client; endpoint, region and credentials from the environment
    (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...), as the Go test
    sets them."""
    session = session or boto3.session.Session()
    return session.client(service, region_name=os.environ.get("AWS_REGION"))


def attributes_to_json(attributes):
    """boto3 message attributes as JSON: Binary values in base64."""
    out = {}
    for name, attr in (attributes or {}).items():
        if "BinaryValue" in attr:
            out[name] = {"DataType": attr["DataType"], "BinaryValue": base64.b64encode(attr["BinaryValue"]).decode()}
        else:
            out[name] = {"DataType": attr["DataType"], "StringValue": attr.get("StringValue", "")}
    return out


def attributes_from_json(attributes):
    """The reverse of attributes_to_json."""
    out = {}
    for name, attr in (attributes or {}).items():
        if "BinaryValue" in attr:
            out[name] = {"DataType": attr["DataType"], "BinaryValue": base64.b64decode(attr["BinaryValue"])}
        else:
            out[name] = {"DataType": attr["DataType"], "StringValue": attr["StringValue"]}
    return out
