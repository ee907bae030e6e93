#!/usr/bin/env python3
"""Checks tickets' QR payloads offline, with the deployment's public keys alone, as a gate
scanner does: no call to the API, no secret.

    verify-ticket.py KEYS PAYLOAD...

KEYS is the JSON Web Key Set served at /.well-known/ticket-keys.json (a URL, or a file saved
from it while online). A payload is `<fields>;<kid>;<sig>`: sig is the Ed25519 signature
(base64url, no padding) of every byte before its `;`. Prints one JSON line per payload
({"valid": ..., "fields": [...]}) and exits 1 if any payload is not genuine.
"""
import base64
import json
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_keys(source):
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=10) as r:
            jwks = json.load(r)
    else:
        with open(source, encoding="utf-8") as f:
            jwks = json.load(f)
    return {
        k["kid"]: Ed25519PublicKey.from_public_bytes(b64url(k["x"]))
        for k in jwks["keys"]
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
    }


def verify(keys, payload):
    """The payload's fields if one of the keys signed it, else None."""
    signed, _, sig = payload.rpartition(";")
    body, _, kid = signed.rpartition(";")
    if not body or kid not in keys:
        return None
    try:
        keys[kid].verify(b64url(sig), signed.encode("utf-8"))
    except (InvalidSignature, ValueError):
        return None
    return body.split(";")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    keys = load_keys(argv[1])
    genuine = True
    for payload in argv[2:]:
        fields = verify(keys, payload)
        genuine = genuine and fields is not None
        print(json.dumps({"valid": fields is not None, "fields": fields}))
    return 0 if genuine else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
