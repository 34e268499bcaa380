#!/usr/bin/env python3
"""Loads a chorus cluster with N messages spread round-robin over R rooms and
prints the RSS of every node process afterwards (the per-room index bound of
issue 15). Pipelined: each of C connections keeps W chats in flight.

  chorus up --no-client --data-dir /tmp/chorus-rss --base-port 17501 &
  python3 scripts/rooms_rss.py --ports 17501,17502,17503 --total 1000000 --rooms 1000

Prints one JSON line: sent, acked, seconds, rooms listed by LIST, and
VmRSS/VmHWM (KiB) of each node (found by its listening port, via /proc).
"""

import argparse
import asyncio
import json
import os
import time


def node_pids(ports):
    """pid of the process listening on each port (Linux /proc)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    port = int(parts[1].rsplit(":", 1)[1], 16)
                    if parts[3] == "0A" and port in ports:
                        inodes[parts[9]] = port
        except OSError:
            pass
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    found[inodes[link[8:-1]]] = int(pid)
        except OSError:
            continue
    return found


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", default="17501,17502,17503")
    ap.add_argument("--total", type=int, default=1_000_000)
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--window", type=int, default=256)
    a = ap.parse_args()
    ports = [int(p) for p in a.ports.split(",")]
    per = a.total // a.clients
    acked = 0
    t0 = time.time()

    async def client(i):
        nonlocal acked
        r, w = await asyncio.open_connection("127.0.0.1", ports[i % len(ports)], limit=1 << 22)
        w.write(b'{"type":"HELLO","proto":2,"client":"rooms_rss.py/1"}\n')
        await r.readline()
        sem = asyncio.Semaphore(a.window)

        async def reader():
            nonlocal acked
            got = 0
            while got < per:
                line = await r.readline()
                if not line:
                    raise SystemExit(f"client {i}: connection closed after {got}")
                if b'"CHAT_ACK"' in line:
                    got += 1
                    acked += 1
                    sem.release()
                elif b'"ERROR"' in line:
                    raise SystemExit(f"client {i}: {line!r}")

        rt = asyncio.create_task(reader())
        for k in range(per):
            await sem.acquire()
            g = i * per + k
            w.write(('{"type":"CHAT","msg_id":"rss-%d","room_id":"room-%d","payload":"%s"}\n'
                     % (g, g % a.rooms, "v" * 100)).encode())
            if k % 64 == 0:
                await w.drain()
        await w.drain()
        await rt
        w.close()

    await asyncio.gather(*(client(i) for i in range(a.clients)))
    secs = time.time() - t0
    r, w = await asyncio.open_connection("127.0.0.1", ports[0], limit=1 << 24)
    w.write(b'{"type":"HELLO","proto":2,"client":"rooms_rss.py/1"}\n{"type":"LIST"}\n')
    await r.readline()
    rooms = json.loads(await r.readline())
    w.close()
    pids = node_pids(set(ports))
    print(json.dumps({"sent": per * a.clients, "acked": acked, "seconds": round(secs, 1),
                      "rooms_listed": len(rooms.get("rooms", [])),
                      "nodes": {str(p): mem(pid) for p, pid in sorted(pids.items())}}))


if __name__ == "__main__":
    asyncio.run(main())
