#!/usr/bin/env python3
"""Checks a received webhook with the `standardwebhooks` package (the Standard Webhooks
specification's reference library), as a partner's receiver does.

    verify-webhook.py < {"secret": "whsec_...", "headers": {...}, "body": "..."}

Prints the verified message as JSON and exits 0, or prints why it was refused and exits 1.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main():
    received = json.load(sys.stdin)
    try:
        message = Webhook(received["secret"]).verify(received["body"], received["headers"])
    except WebhookVerificationError as e:
        print(json.dumps({"verified": False, "error": str(e)}))
        return 1
    print(json.dumps({"verified": True, "message": message}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
