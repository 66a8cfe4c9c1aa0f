#!/usr/bin/env python3
"""A kesu notification sender in Python: copy it and replace deliver().

Notification decides who is told what; senders deliver it. A sender:

  consumes  notify.req.<sms|email|app>      (stream NOTIFY_REQUESTS)
            kesu.v1.NotificationRequest: the rendered text (subject, body,
            html_body), the recipient's address in clear, the template id
            and its parameters (for providers with registered templates).
  reports   notify.report.<channel>         (stream NOTIFY_REPORTS)
            kesu.v1.DeliveryReport: SENT when the provider took it,
            DELIVERED on a receipt, FAILED with the reason (retryable or
            not). Publish with Nats-Msg-Id "<request_id>:<kind>".

De-duplicate on request_id. Delivery is at least once: after an outage
longer than the stream's duplicate window the same request can arrive
twice (same Nats-Msg-Id). This example keeps the ids it sent in SQLite and
acknowledges a repeat without sending it again. If your provider accepts
an idempotency key, pass request_id as that key too: that covers a crash
between the provider taking a message and this sender recording it.

Never log the address or the text. Requests carry them in clear; the
stream keeps them only as long as notification says (24 h by default).

Usage (after ./generate.sh, see README.md):
  python sender.py --nats nats://127.0.0.1:4222 [--channels sms,email,app]
                   [--db sent.sqlite3] [--outbox deliveries.jsonl] [--max-idle 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

GEN_DIR = Path(os.environ.get("KESU_GEN_DIR", Path(__file__).resolve().parent / "gen"))
sys.path.insert(0, str(GEN_DIR))
try:
    from kesu.v1 import common_pb2, notification_pb2
except ImportError as e:  # pragma: no cover - a setup problem, not a bug
    sys.exit(f"cannot import the generated classes from {GEN_DIR} ({e}); run ./generate.sh first")

import nats
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig

SENDER = "example-python-sender"
CHANNELS = {"sms": common_pb2.NOTIFY_CHANNEL_SMS, "email": common_pb2.NOTIFY_CHANNEL_EMAIL, "app": common_pb2.NOTIFY_CHANNEL_APP}


class SentLog:
    """The request ids this sender has sent: the de-duplication record."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS sent (request_id TEXT PRIMARY KEY, channel TEXT, at REAL)")
        self.db.commit()

    def seen(self, request_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM sent WHERE request_id = ?", (request_id,)).fetchone() is not None

    def record(self, request_id: str, channel: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO sent VALUES (?, ?, ?)", (request_id, channel, time.time()))
        self.db.commit()


def deliver(request: notification_pb2.NotificationRequest, channel: str, outbox: Path) -> str:
    """Hands the message to the provider; returns the provider's message id.

    Replace this with your SMS gateway, mail service or push service, passing
    request.request_id as the idempotency key if it takes one. Raise an
    exception when the provider fails: the request is retried.
    """
    record = {
        "request_id": request.request_id,
        "channel": channel,
        "to": request.recipient.address,
        "subject": request.subject,
        "body": request.body,
        "template_id": request.template_id,
        "params": dict(request.params),
    }
    with outbox.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return f"example-{request.request_id}"


async def report(js, request, channel: str, kind: int, provider_id: str = "", reason: str = "", retryable=False, attempt=1):
    at = Timestamp()
    at.GetCurrentTime()
    msg = notification_pb2.DeliveryReport(
        request_id=request.request_id,
        channel=request.channel,
        kind=kind,
        sender=SENDER,
        provider_message_id=provider_id,
        reason=reason,
        retryable=retryable,
        attempt=attempt,
        at=at,
    )
    name = notification_pb2.DeliveryReportKind.Name(kind).removeprefix("DELIVERY_REPORT_KIND_").lower()
    msg_id = f"{request.request_id}:{name}" + (f":{attempt}" if retryable else "")
    await js.publish(
        f"notify.report.{channel}",
        msg.SerializeToString(),
        headers={"Nats-Msg-Id": msg_id, "Kesu-Type": "kesu.v1.DeliveryReport", "Content-Type": "application/protobuf"},
    )


async def handle(js, msg, log: SentLog, outbox: Path) -> str:
    channel = msg.subject.rsplit(".", 1)[-1]
    try:
        request = notification_pb2.NotificationRequest.FromString(msg.data)
    except DecodeError:
        await msg.term()  # not a request: never retried
        return "undecodable"
    if not request.request_id:
        await msg.term()
        return "no request id"
    if log.seen(request.request_id):
        await msg.ack()  # a repeat of a request sent before: not sent again
        return "duplicate"
    attempt = msg.metadata.num_delivered
    try:
        provider_id = deliver(request, channel, outbox)
    except Exception as e:  # the provider failed: report, retry later
        await report(js, request, channel, notification_pb2.DELIVERY_REPORT_KIND_FAILED, reason=type(e).__name__, retryable=True, attempt=attempt)
        await msg.nak(delay=min(2**attempt, 300))
        return "retry"
    log.record(request.request_id, channel)
    await report(js, request, channel, notification_pb2.DELIVERY_REPORT_KIND_SENT, provider_id=provider_id, attempt=attempt)
    await msg.ack()
    return "sent"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--channels", default="sms,email,app")
    parser.add_argument("--durable", default="example-sender")
    parser.add_argument("--db", default="sent.sqlite3")
    parser.add_argument("--outbox", default="deliveries.jsonl", help="where this example 'delivers' (JSON lines)")
    parser.add_argument("--max-idle", type=float, default=0, help="exit after this many idle seconds (0: never)")
    args = parser.parse_args()
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        sys.exit(f"unknown channels {unknown}: use sms, email, app")

    nc = await nats.connect(args.nats)
    js = nc.jetstream()
    log = SentLog(args.db)
    outbox = Path(args.outbox)
    subs = []
    for channel in channels:
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_ack_pending=64)
        subs.append(await js.pull_subscribe(f"notify.req.{channel}", durable=f"{args.durable}-{channel}", stream="NOTIFY_REQUESTS", config=config))
    counts: dict[str, int] = {}
    idle_since = time.monotonic()
    while True:
        got = False
        for sub in subs:
            try:
                messages = await sub.fetch(16, timeout=0.5)
            except (NatsTimeoutError, asyncio.TimeoutError):
                continue
            for msg in messages:
                got = True
                outcome = await handle(js, msg, log, outbox)
                counts[outcome] = counts.get(outcome, 0) + 1
        if got:
            idle_since = time.monotonic()
        elif args.max_idle and time.monotonic() - idle_since > args.max_idle:
            break
    # Every message is acknowledged and every report published (awaited): close.
    await nc.flush()
    await nc.close()
    print(json.dumps(counts, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
