"""A responder in Python that a courier Requester calls (docs/wire.md,
"Request and reply"), written from docs/wire.md alone.

    responder.py QUEUE_URL COUNT TIMEOUT

Answers requests on QUEUE_URL until it has answered COUNT distinct ones
(by cid), or fails after TIMEOUT seconds. The handler: a body "fail:TEXT"
gets an error reply whose error text is TEXT; any other body B gets the
reply "py:B" with the attribute answered-by=python. A reply carries the
request's traceparent. Prints JSON on stdout, one entry per request
answered: {"cid", "ra", "header", "body", "traceparent"}.

Its replies' `courier` attribute is written in an order courier does not
write, keys in reverse, with `cid` repeated (a bogus second value): "a
reader must accept any order, and takes the first value of a repeated key".
"""

import json
import sys
import time

import peer
import wire


def handle(body):
    """(reply body, error text or None)."""
    if body.startswith("fail:"):
        text = body[len("fail:"):]
        return text, text
    return "py:" + body, None


def main():
    queue_url, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sqs = peer.client("sqs")
    deadline = time.monotonic() + timeout
    answered = {}
    seen = []
    while len(answered) < count:
        if time.monotonic() > deadline:
            peer.fail("responder: answered %d of %d requests in %ss; saw %s" % (len(answered), count, timeout, seen))
        out = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"])
        for message in out.get("Messages", []):
            attributes = message.get("MessageAttributes", {})
            try:
                header = wire.decode_header(attributes.get(wire.HEADER))
            except wire.Malformed as e:
                peer.fail("responder: malformed request: %s" % e)
            seen.append(header)
            ra = (header or {}).get(wire.RETURN_ADDRESS)
            if not ra:
                # A request without a return address is not answered and
                # not deleted: it goes to the dead-letter queue.
                continue
            cid = header.get(wire.CID, "")
            body, error = handle(message["Body"])
            if not cid:
                body, error = "request without a cid", "request without a cid"
            reply_header = {wire.CID: cid}
            if error is not None:
                # "An error reply is a reply whose courier has the error key;
                # its value is the error text, and the body is the same text."
                reply_header[wire.ERROR] = error.encode()[:wire.MAX_ERROR_BYTES].decode(errors="ignore")
                body = reply_header[wire.ERROR]
            value = wire.encode_header(reply_header)
            if value is not None and cid:
                value = "&".join(reversed(value.split("&"))) + "&" + wire.encode_header({wire.CID: "not-" + cid})
            reply_attributes = {wire.HEADER: wire.header_attribute(reply_header, value)}
            tp = wire.traceparent(attributes, header)
            if tp:
                reply_attributes[wire.TRACEPARENT] = {"DataType": "String", "StringValue": tp}
            if error is None:
                reply_attributes["answered-by"] = {"DataType": "String", "StringValue": "python"}
            sqs.send_message(QueueUrl=ra, MessageBody=body, MessageAttributes=reply_attributes)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if cid and cid not in answered:
                answered[cid] = {"cid": cid, "ra": ra, "header": header, "body": message["Body"], "traceparent": tp}
    json.dump(list(answered.values()), sys.stdout)


if __name__ == "__main__":
    main()
