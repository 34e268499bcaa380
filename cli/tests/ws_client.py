#!/usr/bin/env python3
"""The /ws checks of cli/tests/websocket.rs, run with the PyPI `websockets`
client (a WebSocket implementation nobody on chorus wrote) against real
nodes. Arguments: a JSON object {leader_http, follower_http, leader_port,
leader_pid, follower_pid, max_line, ca (optional: wss with this CA)}.
Prints one line per check; exits non-zero on the first failure. Every wait
is bounded."""

import asyncio
import json
import socket
import ssl
import sys
import time

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

ARGS = json.loads(sys.argv[1])
CA = ARGS.get("ca")
SCHEME = "wss" if CA else "ws"
T = 10  # seconds: every single wait


def ssl_ctx():
    if not CA:
        return None
    ctx = ssl.create_default_context(cafile=CA)  # verifies the chain and the name
    return ctx


def url(port):
    return f"{SCHEME}://127.0.0.1:{port}/ws"


def ok(what):
    print(f"ok: {what}", flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


HELLO = json.dumps({"type": "HELLO", "proto": 2, "client": "ws_client.py/1"})


async def connect(port, hello=True, **kw):
    """A WebSocket session; with `hello`, announced as a chorus client (the
    full protocol: CHAT_ACK, ERROR, ...) and the node's HELLO read."""
    ws = await websockets.connect(
        url(port), ssl=ssl_ctx(), open_timeout=T, max_size=None, **kw
    )
    if hello:
        await ws.send(HELLO)
        m = await recv_json(ws)
        assert m["type"] == "HELLO", m
    return ws


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), T))


async def recv_type(ws, ty):
    while True:
        m = await recv_json(ws)
        if m["type"] == ty:
            return m


def chat(msg_id, payload):
    return json.dumps({"type": "CHAT", "msg_id": msg_id, "payload": payload, "room_id": "general"})


async def line_client_chats(port, n, tag):
    """A JSON-line client (plain TCP) on the leader's client port sends n CHATs."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ssl_ctx()), T)
    w.write((HELLO + "\n").encode())
    await w.drain()
    m = json.loads(await asyncio.wait_for(r.readline(), T))
    assert m["type"] == "HELLO", m
    for i in range(n):
        w.write((chat(f"{tag}{i}", f"line {i}") + "\n").encode())
    await w.drain()
    acks = 0
    while acks < n:
        m = json.loads(await asyncio.wait_for(r.readline(), T))
        assert m["type"] == "CHAT_ACK", m
        acks += 1
    w.close()


async def chat_and_subscribe():
    lead = await connect(ARGS["leader_http"])
    await lead.send(json.dumps({"type": "STATUS"}))
    st = await recv_type(lead, "STATUS")
    assert st["role"] == "leader", st
    ok("STATUS over /ws on the leader")
    # One frame, two lines: two answers, each in its own frame.
    await lead.send(chat("w-a", "one") + "\n" + chat("w-b", "two"))
    a = await recv_type(lead, "CHAT_ACK")
    b = await recv_type(lead, "CHAT_ACK")
    assert (a["msg_id"], b["msg_id"]) == ("w-a", "w-b") and b["seq_no"] > a["seq_no"], (a, b)
    ok("two CHAT lines in one frame: two CHAT_ACK frames")
    follower = await connect(ARGS["follower_http"])
    await follower.send(json.dumps({"type": "SUBSCRIBE", "from_seq": a["seq_no"], "room_id": "general"}))
    await line_client_chats(ARGS["leader_port"], 20, "tcp-")
    got = []
    while len(got) < 22:
        m = await recv_type(follower, "SEQ_CHAT")
        got.append(m)
    ids = [m["msg_id"] for m in got]
    assert ids == ["w-a", "w-b"] + [f"tcp-{i}" for i in range(20)], ids
    seqs = [m["seq_no"] for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 22, seqs
    ok("a follower's /ws subscriber got the JSON-line client's 20 chats, in order")
    return lead, follower


async def bad_origin():
    try:
        ws = await connect(ARGS["leader_http"], origin="https://evil.example")
        await ws.close()
        raise AssertionError("a foreign Origin was accepted")
    except InvalidStatus as e:
        assert e.response.status_code == 403, e.response.status_code
    ok("Origin https://evil.example refused with 403")
    port = ARGS["leader_http"]
    ws = await connect(port, origin=f"http://localhost:{port}")
    await ws.send(json.dumps({"type": "STATUS"}))
    await recv_type(ws, "STATUS")
    await ws.close()
    ok(f"Origin http://localhost:{port} accepted")


async def oversized():
    ws = await connect(ARGS["leader_http"])
    await ws.send("x" * (ARGS["max_line"] + 1))
    try:
        while True:
            await asyncio.wait_for(ws.recv(), T)
    except ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 1009, e
        reason = e.rcvd.reason
    ok(f"a {ARGS['max_line'] + 1} byte frame closed with 1009 ({reason})")


async def protocol_error_and_binary():
    ws = await connect(ARGS["leader_http"])
    await ws.send(b"\x00\x01")
    try:
        while True:
            await asyncio.wait_for(ws.recv(), T)
    except ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 1003, e
    ok("a binary frame closed with 1003")
    ws = await connect(ARGS["leader_http"])
    await ws.send("not json")
    m = await recv_type(ws, "ERROR")
    assert m["code"] == "bad_request", m
    try:
        while True:
            await asyncio.wait_for(ws.recv(), T)
    except ConnectionClosed as e:
        assert e.rcvd is not None and e.rcvd.code == 1008, e
        code = f"{e.rcvd.code} ({e.rcvd.reason})"
    ok(f"a bad line: ERROR bad_request, then close {code}")


async def slow_reader(lead):
    pid = ARGS["leader_pid"]
    before = rss_kib(pid)
    # max_queue=1: websockets stops reading the socket once one message waits.
    slow = await connect(ARGS["leader_http"], max_queue=1)
    status = json.dumps({"type": "STATUS"})
    t0 = time.monotonic()
    closed = False
    sent = 0
    try:
        for i in range(200):
            # Each STATUS answer is ~250 bytes: 200 × 500 of them pass 8 MiB.
            for _ in range(500):
                await slow.send(status)
                sent += 1
            # Meanwhile the others keep chatting.
            await lead.send(chat(f"during-{i}", "still here"))
            await recv_type(lead, "CHAT_ACK")
            if time.monotonic() - t0 > 20:
                break
    except ConnectionClosed:
        closed = True
    peak = rss_kib(pid)
    if not closed:
        try:
            while True:
                await asyncio.wait_for(slow.recv(), T)
        except ConnectionClosed:
            closed = True
    assert closed, "the non-reading client was never disconnected"
    code = slow.close_code
    grew = peak - before
    assert grew < 64 * 1024, f"RSS grew {grew} KiB"
    ok(f"a non-reading client disconnected after {sent} STATUS requests (close code {code}); leader RSS {before} -> {peak} KiB")
    await lead.send(chat("after-slow", "still here"))
    await recv_type(lead, "CHAT_ACK")
    ok("the leader's other /ws session kept chatting throughout")


def raw_handshake(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    if CA:
        s = ssl_ctx().wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def no_pong():
    """A client that never answers pings is closed (1008) after the timeout."""
    s = raw_handshake(ARGS["leader_http"])
    t0 = time.monotonic()
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    took = time.monotonic() - t0
    assert data[:1] == b"\x89", data[:8]  # a ping first
    i = data.find(b"\x88")
    assert i >= 0, data
    code = int.from_bytes(data[i + 2 : i + 4], "big")
    assert code == 1008, code
    ok(f"a client that never pongs: pinged, then closed with 1008 after {took:.1f} s ({data[i+4:].decode(errors='replace')})")


async def pongs_keep_alive(ws):
    await asyncio.sleep(2.0)  # several ping intervals; websockets answers them
    await ws.send(json.dumps({"type": "STATUS"}))
    await recv_type(ws, "STATUS")
    ok("a client that answers pings stays connected through 2 s of silence")


async def main():
    lead, follower = await chat_and_subscribe()
    await bad_origin()
    await oversized()
    await protocol_error_and_binary()
    await asyncio.get_running_loop().run_in_executor(None, no_pong)
    await pongs_keep_alive(follower)
    await slow_reader(lead)
    await lead.close()
    assert lead.close_code == 1000, lead.close_code
    ok("a normal close is answered with 1000")
    await follower.close()


asyncio.run(main())
