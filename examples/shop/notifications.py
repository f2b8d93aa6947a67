#!/usr/bin/python3
"""notifications - tells the customer their order was placed (here: a line in a file).

The shop's one service in Python, on pika, to show that any RabbitMQ client fits in.
It consumes order.placed events from the durable queue "notifications" (declared by the C
services with x-retry-delays back-off and dead letters to "notifications.dead"; this
service does not declare it, so all declarations carry the same arguments), and appends
each order id to --ids after sending and before the ack. It reconnects when the broker
goes away.

With --serve QUEUE it answers calls on QUEUE instead (the last link of the shop wired as
a chain of synchronous calls). A reply continues the request's trace: it carries the
request's traceparent trace id with a span id of its own (W3C Trace Context), which is all
a service has to do to show up in `switchboard trace`.

usage: notifications.py [--url URL] [--ids FILE] [--work-ms N] [--serve QUEUE]
"""
import argparse
import json
import os
import re
import secrets
import sys
import time

import pika


def log(msg):
    print(f"notifications[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def append_line(path, line):
    """One write on an O_APPEND file, so a killed process never leaves half a line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def child_traceparent(props):
    """The traceparent for what we send while handling a message: its trace id and flags,
    our own new span id; None when the message carries no (valid) traceparent."""
    tp = (props.headers or {}).get("traceparent")
    if isinstance(tp, bytes):
        tp = tp.decode(errors="replace")
    m = re.fullmatch(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})", tp or "")
    return f"00-{m.group(1)}-{secrets.token_hex(8)}-{m.group(2)}" if m else None


def serve(args, params):
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    queue = args.serve or "notifications"
    if args.serve:
        ch.queue_declare(args.serve)
    ch.basic_qos(prefetch_count=10)

    def on_message(ch, method, props, body):
        order_id = json.loads(body).get("order_id", "?")
        if args.work_ms:
            time.sleep(args.work_ms / 1000)
        if args.ids:
            append_line(args.ids, order_id)
        if props.reply_to:
            tp = child_traceparent(props)
            ch.basic_publish("", props.reply_to,
                             json.dumps({"order_id": order_id, "status": "notified"}).encode(),
                             pika.BasicProperties(correlation_id=props.correlation_id,
                                                  content_type="application/json",
                                                  headers={"traceparent": tp} if tp else None))
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(queue, on_message)
    log(f"connected, serving {queue}")
    try:
        ch.start_consuming()
    finally:
        try:
            conn.close()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("AMQP_URL",
                                                    "amqp://guest:guest@localhost:5672/%2F"))
    ap.add_argument("--ids", help="append each notified order id to this file")
    ap.add_argument("--work-ms", type=int, default=0, help="time to send one notification")
    ap.add_argument("--serve", help="answer calls on this queue instead of consuming events")
    args = ap.parse_args()
    url = args.url if not args.url.endswith("/") else args.url + "%2F"
    params = pika.URLParameters(url)
    params.heartbeat = 5
    params.connection_attempts = 1
    failures = 0
    while True:
        try:
            serve(args, params)
        except (pika.exceptions.AMQPError, OSError) as e:
            if failures % 20 == 0:
                log(f"connection lost or refused ({e!r}), retrying")
            failures += 1
            time.sleep(0.1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
