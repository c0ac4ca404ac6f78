"""courier's wire format, version 1, as docs/wire.md specifies it.

Written from docs/wire.md alone, not from courier's Go source: the interop
tests (package interop) check that a peer written this way talks to courier.
Section names in the comments are the document's.
"""

import re
from urllib.parse import unquote_plus, urlencode

# "The `courier` attribute": name, data type String.
HEADER = "courier"
# "The `traceparent` attribute".
TRACEPARENT = "traceparent"

# Keys of "The `courier` attribute".
CID = "cid"
RETURN_ADDRESS = "ra"
ERROR = "error"
VERSION = "v"
TP = "tp"

# "Request and reply": an error text is at most 4,096 bytes.
MAX_ERROR_BYTES = 4096


class Malformed(ValueError):
    """A `courier` attribute of courier's form with a broken percent-escape:
    a malformed courier message ("Whose attribute is it")."""


_ESCAPE_BROKEN = re.compile(r"%(?![0-9A-Fa-f]{2})")


def encode_header(pairs):
    """The value of the `courier` attribute for pairs: form-urlencoded as
    Python's urlencode writes it, sorted by key, each key once. Keys without
    a value are left out; None when no key has one (the attribute is then
    not written)."""
    items = sorted((k, v) for k, v in pairs.items() if v)
    if not items:
        return None
    return urlencode(items)


def header_attribute(pairs, value=None):
    """The `courier` message attribute (boto3's form) for pairs, or for an
    already encoded value; None when there is nothing to write."""
    if value is None:
        value = encode_header(pairs)
    if value is None:
        return None
    return {"DataType": "String", "StringValue": value}


def decode_header(attribute):
    """The keys of a `courier` message attribute (boto3's form), or None when
    the attribute is absent or is somebody else's ("Whose attribute is it"):
    not String, not a non-empty list of key=value pairs with non-empty keys,
    or a version other than 1. Raises Malformed for a broken percent-escape.
    The first value of a repeated key wins; any order is accepted."""
    if not attribute or attribute.get("DataType") != "String":
        return None
    value = attribute.get("StringValue") or ""
    if not value:
        return None
    fields = value.split("&")
    for field in fields:
        key, eq, _ = field.partition("=")
        if not eq or not key:
            return None
    pairs, broken = {}, False
    for field in fields:
        key, _, val = field.partition("=")
        if _ESCAPE_BROKEN.search(key) or _ESCAPE_BROKEN.search(val):
            broken = True
        pairs.setdefault(unquote_plus(key), unquote_plus(val))
    if pairs.get(VERSION, "1") != "1":
        return None
    if broken:
        raise Malformed("courier attribute with a broken percent-escape: %r" % value)
    return pairs


def traceparent(attributes, header):
    """"A reader takes the attribute, else `tp`"."""
    attr = attributes.get(TRACEPARENT)
    if attr and attr.get("DataType") == "String" and attr.get("StringValue"):
        return attr["StringValue"]
    return (header or {}).get(TP)
