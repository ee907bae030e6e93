"""Deliberate breaks: each one changes a line of the code a test guards, runs that test, and
expects it to fail; the file is restored whatever happens. Proof that the tests can fail.

Usage: python3 scripts/breaks.py [NAME ...]   (no name: every break; run under
scripts/with-moto.sh for the ones marked moto). `make breaks` runs them all.
"""
import os
import signal
import subprocess
import sys

# A stop (Ctrl-C, kill) still restores the file being broken.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (file, text to find, replacement, cargo test arguments, what it shows)
BREAKS = {
    "memory-condition": (
        "shared/src/store/memory.rs",
        "Cond::Version(v) => current.is_some_and(|i| i.version == v),",
        "Cond::Version(_v) => current.is_some(),",
        ["-p", "api-tests", "--test", "store_conformance", "memory::race"],
        "the embedded store ignores a version condition: racing writers both win",
    ),
    "dynamo-condition": (
        "shared/src/store/dynamo.rs",
        'text: Some("#ver = :ver".into()),',
        'text: Some("attribute_exists(pk) OR attribute_not_exists(pk)".into()),',
        ["-p", "api-tests", "--test", "store_conformance", "dynamo::race"],
        "the DynamoDB adapter drops the version condition (moto)",
    ),
    "own-writes": (
        "shared/src/lib.rs",
        "let store: Arc<dyn Store> = Arc::new(store::own_writes::OwnWrites::new(store));",
        "",
        ["-p", "api-tests", "--test", "faults", "memory::"],
        "a write applied, then reported as a conflict (the SDK's retry), answers 409 or is redone",
    ),
    "fence": (
        "shared/src/zoo/mod.rs",
        "Ok(None) => payments::fence(app, &p).await,",
        "Ok(None) => ApiResult::Ok(false),",
        ["-p", "api-tests", "--test", "faults", "zoo_session_create"],
        "a session write that lands after its caller gave up keeps places that were given back",
    ),
    "enqueue-twice": (
        "shared/src/outbox.rs",
        "        if let Err(e) = queue.send(&n).await {",
        "        let _ = queue.send(&n).await;\n        if let Err(e) = queue.send(&n).await {",
        ["-p", "api-tests", "--test", "tickets_http", "concurrent_checkouts"],
        "every email enqueued twice: the counted outbox sees it",
    ),
    "notifier-claim": (
        "functions/notifier/src/lib.rs",
        "match deps.store.put(claimed, Cond::NotExists).await {",
        "match deps.store.put(claimed, Cond::Always).await {",
        ["-p", "api-tests", "--test", "notifier_moto", "concurrent_deliveries_send_once_memory"],
        "concurrent deliveries of one message each take the claim: two emails",
    ),
    "idempotency-claim": (
        "shared/src/idempotency.rs",
        "match app.store.put(marker, Cond::NotExists).await {",
        "match app.store.put(marker, Cond::Always).await {",
        ["-p", "api-tests", "--test", "zoo_payments", "idempotency_key"],
        "the same Idempotency-Key five times at once makes several sessions",
    ),
    "amount-rule": (
        "shared/src/payments/settle.rs",
        "if gateway_agrees && owner.expects == Some(current.amount) {",
        "if owner.expects.is_some() {",
        ["-p", "api-tests", "--test", "money_integrity", "memory::"],
        "a payment of a smaller signed sum advances its owner",
    ),
    "seat-hold": (
        "shared/src/tickets/reservations.rs",
        "None => (Cond::NotExists, 1),",
        "None => (Cond::Always, 1),",
        ["-p", "api-tests", "--test", "tickets_race", "memory_"],
        "a free seat is held by whoever writes last: two buyers both win it",
    ),
    "robokassa-shp-order": (
        "shared/src/payments/gateways/robokassa.rs",
        'shp.iter().map(|(k, v)| format!(":{k}={v}")).collect()',
        'shp.iter().rev().map(|(k, v)| format!(":{k}={v}")).collect()',
        ["-p", "api-tests", "--test", "robokassa_crosscheck"],
        "Robokassa's Shp_ parameters signed out of order: aiorobokassa disagrees",
    ),
    "sample-event": (
        "events/scheduler-payments.json",
        '"detail-type": "Scheduled Event",',
        '"detail_type": "Scheduled Event",',
        ["-p", "api-tests", "--test", "lambda_events"],
        "a sample event that is not EventBridge's shape",
    ),
}


def run(name):
    path, old, new, args, what = BREAKS[name]
    full = os.path.join(ROOT, path)
    original = open(full, encoding="utf-8").read()
    if original.count(old) != 1:
        print(f"{name}: the text to break is not found once in {path}")
        return False
    try:
        with open(full, "w", encoding="utf-8") as f:
            f.write(original.replace(old, new, 1))
        res = subprocess.run(["cargo", "test", "-q", *args], cwd=ROOT, capture_output=True, text=True)
    finally:
        with open(full, "w", encoding="utf-8") as f:
            f.write(original)
    failed = res.returncode != 0 and "test result: FAILED" in res.stdout + res.stderr
    print(f"{'caught' if failed else 'MISSED'}: {name} ({what}) -- cargo test {' '.join(args)}")
    if not failed:
        print((res.stdout + res.stderr)[-2000:])
    return failed


def main():
    names = sys.argv[1:] or list(BREAKS)
    unknown = [n for n in names if n not in BREAKS]
    if unknown:
        sys.exit(f"unknown break(s): {', '.join(unknown)}; known: {', '.join(BREAKS)}")
    missed = [n for n in names if not run(n)]
    if missed:
        sys.exit(f"breaks the tests did not catch: {', '.join(missed)}")


if __name__ == "__main__":
    main()
