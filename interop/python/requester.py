"""A requester in Python that calls a courier Responder (docs/wire.md,
"Request and reply"), written from docs/wire.md alone.

Reads a job as JSON on stdin:

    {"queue_url": "...", "timeout": 30,
     "requests": [{"body": "...", "headers": {"k": "v"}, "traceparent": "...", "no_cid": false}]}

creates a reply queue of its own (courier-reply-py-*, which a courier
Responder answers by default), sends every request at once, waits for one
reply to each, deletes the reply queue and prints JSON on stdout, one entry
per request in the job's order (a request with "no_cid", at most one, goes
without a cid and takes the reply without one that docs/wire.md promises):

    {"cid": "...", "body": "...",
     "reply": {"body": "...", "header": {...}, "attributes": {...}, "traceparent": "..."},
     "duplicates": 0}

Exits 1 with the reason on stderr when a reply does not come in time or is
not courier's. Endpoint, region and credentials come from the environment.
"""

import json
import sys
import time
import uuid

import peer
import wire


def main():
    job = json.load(sys.stdin)
    sqs = peer.client("sqs")
    deadline = time.monotonic() + float(job.get("timeout", 30))

    # "A requester must name in ra a queue the responder may send to: by
    # default ... courier-reply-* queues in its own account".
    reply_queue = sqs.create_queue(QueueName="courier-reply-py-" + uuid.uuid4().hex[:12])["QueueUrl"]
    try:
        results = call_all(sqs, job, reply_queue, deadline)
    finally:
        sqs.delete_queue(QueueUrl=reply_queue)
    json.dump(results, sys.stdout)


def call_all(sqs, job, reply_queue, deadline):
    pending = {}
    results = []
    for request in job["requests"]:
        # "make its cid unique among its requests in flight".
        cid = "" if request.get("no_cid") else uuid.uuid4().hex
        pairs = dict(request.get("headers") or {})
        pairs[wire.CID] = cid
        pairs[wire.RETURN_ADDRESS] = reply_queue
        attributes = {wire.HEADER: wire.header_attribute(pairs)}
        if request.get("traceparent"):
            attributes[wire.TRACEPARENT] = {"DataType": "String", "StringValue": request["traceparent"]}
        sqs.send_message(QueueUrl=job["queue_url"], MessageBody=request["body"], MessageAttributes=attributes)
        result = {"cid": cid, "body": request["body"], "reply": None, "duplicates": 0}
        pending[cid] = result  # at most one request without a cid
        results.append(result)

    strays = []
    while any(r["reply"] is None for r in results):
        if time.monotonic() > deadline:
            missing = [r["cid"] for r in results if r["reply"] is None]
            peer.fail("requester: no reply within %ss to %s; replies for no request of ours: %s"
                      % (job.get("timeout", 30), missing, strays))
        out = sqs.receive_message(QueueUrl=reply_queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"])
        for message in out.get("Messages", []):
            sqs.delete_message(QueueUrl=reply_queue, ReceiptHandle=message["ReceiptHandle"])
            attributes = message.get("MessageAttributes", {})
            try:
                header = wire.decode_header(attributes.get(wire.HEADER))
            except wire.Malformed as e:
                peer.fail("requester: malformed reply: %s" % e)
            if header is None:
                peer.fail("requester: a reply without courier's header: attributes %s, body %.200r"
                          % (peer.attributes_to_json(attributes), message["Body"]))
            result = pending.get(header.get(wire.CID, ""))
            if result is None:
                strays.append(header)
                continue
            # "expect a reply at least once ... Take the first and drop the rest."
            if result["reply"] is not None:
                result["duplicates"] += 1
                continue
            result["reply"] = {
                "body": message["Body"],
                "header": header,
                "attributes": peer.attributes_to_json(attributes),
                "traceparent": wire.traceparent(attributes, header),
            }
    return results


if __name__ == "__main__":
    main()
