#!/usr/bin/env python3
"""A client of exactly the seed's shape (issue 15), for chorus's seed dialect.

Like the course project's client_tui.py it is Python 3 asyncio; it reads a
line, parses it as JSON, maps `type` into an enum of the seed's ten message
types and reads obj['sender_id'] and obj['term'] directly. Any line that fails
any of this counts as the connection closing, and it reconnects. It prints
each SEQ_CHAT as `[seq=N] node_<sender_id>: <payload>` and delivers in order
"when seq == next expected" (a hole would stall it).

It sends `--send` seed-format CHAT lines (never HELLO), waits until it has
seen `--expect` SEQ_CHAT lines or `--timeout` seconds, then prints one JSON
summary line on stdout: received, delivered in order, reconnects, payloads.
"""

import argparse
import asyncio
import enum
import json
import sys
import time
import uuid


class MessageType(enum.Enum):
    JOIN = "JOIN"
    JOIN_ACK = "JOIN_ACK"
    HEARTBEAT = "HEARTBEAT"
    ELECTION = "ELECTION"
    ELECTION_OK = "ELECTION_OK"
    COORDINATOR = "COORDINATOR"
    CHAT = "CHAT"
    SEQ_CHAT = "SEQ_CHAT"
    CATCHUP_REQ = "CATCHUP_REQ"
    CATCHUP_RESP = "CATCHUP_RESP"


class Closed(Exception):
    pass


def parse(line):
    """The seed's parser: anything unexpected means the connection is gone."""
    if not line:
        raise Closed("eof")
    obj = json.loads(line)
    kind = MessageType(obj["type"])
    _sender, _term = obj["sender_id"], obj["term"]
    return kind, obj


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--room", default="general")
    ap.add_argument("--send", type=int, default=0)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--gap-ms", type=float, default=2)
    a = ap.parse_args()

    deadline = time.monotonic() + a.timeout
    reconnects, bad = 0, []
    next_seq, held, shown = 1, {}, []
    seen_ids = set()
    sent = 0
    writer_box = {}

    async def sender():
        nonlocal sent
        while sent < a.send and time.monotonic() < deadline:
            w = writer_box.get("w")
            if w is None:
                await asyncio.sleep(0.05)
                continue
            msg = {"type": "CHAT", "sender_id": 9999, "term": 0, "room_id": a.room,
                   "msg_id": str(uuid.uuid4()), "payload": f"seed-{sent}"}
            try:
                w.write((json.dumps(msg) + "\n").encode())
                await w.drain()
                sent += 1
            except (ConnectionError, OSError):
                await asyncio.sleep(0.05)
            await asyncio.sleep(a.gap_ms / 1000)

    task = asyncio.create_task(sender())
    first = True
    while time.monotonic() < deadline and len(seen_ids) < a.expect:
        if not first:
            reconnects += 1
            await asyncio.sleep(0.2)
        first = False
        try:
            r, w = await asyncio.open_connection("127.0.0.1", a.port, limit=1 << 22)
        except OSError:
            continue
        writer_box["w"] = w
        try:
            while len(seen_ids) < a.expect:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    line = await asyncio.wait_for(r.readline(), left)
                except asyncio.TimeoutError:
                    break
                try:
                    kind, obj = parse(line)
                except Exception as e:  # the seed treats any of these as a close
                    bad.append(f"{type(e).__name__}: {line[:200]!r}")
                    raise Closed(str(e))
                if kind is not MessageType.SEQ_CHAT:
                    continue
                seen_ids.add(obj["msg_id"])
                held[obj["seq_no"]] = obj
                while next_seq in held:
                    o = held.pop(next_seq)
                    print(f"[seq={o['seq_no']}] node_{o['sender_id']}: {o['payload']}", file=sys.stderr)
                    shown.append(o["payload"])
                    next_seq += 1
        except Closed:
            pass
        finally:
            writer_box.pop("w", None)
            w.close()
    task.cancel()
    print(json.dumps({"received": len(seen_ids), "delivered_in_order": len(shown),
                      "sent": sent, "reconnects": reconnects, "bad_lines": bad[:5],
                      "payloads": shown}))


if __name__ == "__main__":
    asyncio.run(main())
