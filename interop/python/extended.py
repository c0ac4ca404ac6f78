"""Large messages through the AWS Extended Clients for Python
(amazon-sqs-extended-client, amazon-sns-extended-client), which write and
read the claim-check pointer docs/wire.md ("Claim check") describes.

    extended.py sqs-send QUEUE_URL BUCKET        < {"body": "...", "attributes": {...}}
    extended.py sns-publish TOPIC_ARN BUCKET     < {"body": "...", "attributes": {...}}
    extended.py sqs-receive QUEUE_URL COUNT TIMEOUT [--delete-payload]

Attributes are JSON in boto3's form, Binary values in base64. sqs-receive
takes COUNT messages (deleting each; with --delete-payload the client's
delete_payload_from_s3 is on and it removes the S3 object too) and prints
JSON: [{"length", "sha256", "head", "attributes"}] with the body's length in
bytes (UTF-8), its SHA-256 and first 40 characters.
"""

import hashlib
import json
import sys
import time

from sns_extended_client import SNSExtendedClientSession
from sqs_extended_client import SQSExtendedClientSession

import peer


def sqs_send(queue_url, bucket):
    job = json.load(sys.stdin)
    sqs = peer.client("sqs", SQSExtendedClientSession())
    sqs.large_payload_support = bucket
    out = sqs.send_message(QueueUrl=queue_url, MessageBody=job["body"],
                           MessageAttributes=peer.attributes_from_json(job["attributes"]))
    json.dump({"message_id": out["MessageId"]}, sys.stdout)


def sns_publish(topic_arn, bucket):
    job = json.load(sys.stdin)
    sns = peer.client("sns", SNSExtendedClientSession())
    sns.large_payload_support = bucket
    out = sns.publish(TopicArn=topic_arn, Message=job["body"],
                      MessageAttributes=peer.attributes_from_json(job["attributes"]))
    json.dump({"message_id": out["MessageId"]}, sys.stdout)


def sqs_receive(queue_url, count, timeout, delete_payload):
    sqs = peer.client("sqs", SQSExtendedClientSession())
    sqs.delete_payload_from_s3 = delete_payload
    deadline = time.monotonic() + float(timeout)
    got = []
    while len(got) < int(count):
        if time.monotonic() > deadline:
            peer.fail("sqs-receive: %d of %s messages in %ss" % (len(got), count, timeout))
        out = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"])
        for message in out.get("Messages", []):
            body = message["Body"].encode()
            got.append({
                "length": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "head": message["Body"][:40],
                "attributes": peer.attributes_to_json(message.get("MessageAttributes")),
            })
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    json.dump(got, sys.stdout)


def main():
    verb, args = sys.argv[1], sys.argv[2:]
    if verb == "sqs-send":
        sqs_send(*args)
    elif verb == "sns-publish":
        sns_publish(*args)
    elif verb == "sqs-receive":
        sqs_receive(args[0], args[1], args[2], "--delete-payload" in args[3:])
    else:
        peer.fail("extended.py: unknown verb %r" % verb)


if __name__ == "__main__":
    main()
