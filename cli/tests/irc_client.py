"""IRC sessions scripted with the PyPI `irc` library (jaraco/irc), which
nobody on chorus wrote, against real chorus nodes; run by
cli/tests/irc_gateway.rs with one JSON argument:
{"irc_ports": [...], "ports": [...], "pids": [...], "leader": i}.

ann (IRC) on a follower, ben (IRC) on the leader and jay (a JSON-line
client) on the other follower talk in #talk while the leader is SIGKILLed
mid-conversation. ann's connection must survive; ben's drops and the
script reconnects it to another node's IRC port, where it rejoins (the
JOIN replay shows what it missed) and carries on. At the end every
message is in every view, once, and the IRC views agree with the
JSON client's seq_no order. Every wait is bounded; exit status 0 = pass."""

import json
import os
import signal
import socket
import sys
import time

import irc.client

ARGS = json.loads(sys.argv[1])
HOST = "127.0.0.1"
ROOM = "talk"
PER_CLIENT = 12  # messages each of ann, ben and jay sends
KILL_AT = 4  # the leader dies after this many rounds


def log(*a):
    print(*a, flush=True)


class IrcUser:
    """One `irc` library connection that remembers what it saw."""

    def __init__(self, reactor, nick, port):
        self.reactor = reactor
        self.nick = nick
        self.seen = []  # texts in arrival order (own ones via echo-message)
        self.times = 0  # messages that carried a server-time tag
        self.welcomed = False
        self.joined = False
        self.disconnects = 0
        self.conn = None
        # Handlers are the reactor's (global): added once, each filters on
        # its own connection.
        for ev in ["welcome", "pubmsg", "join", "disconnect", "nicknameinuse"]:
            reactor.add_global_handler(ev, self.on_event)
        self.connect(port)

    def connect(self, port):
        self.port = port
        self.welcomed = False
        self.joined = False
        self.conn = self.reactor.server().connect(HOST, port, self.nick)

    def on_event(self, c, e):
        if c is not self.conn:
            return
        if e.type == "welcome":
            self.welcomed = True
            c.cap("REQ", "echo-message", "server-time")
            c.join("#" + ROOM)
        elif e.type == "join" and e.source.nick == self.nick:
            self.joined = True
        elif e.type == "pubmsg":
            self.seen.append(e.arguments[0])
            if any(t.get("key") == "time" for t in (e.tags or [])):
                self.times += 1
        elif e.type == "disconnect":
            self.disconnects += 1
        elif e.type == "nicknameinuse":
            # Presence may still list the nick on the node that died (for
            # up to the leader timeout): take another, as IRC clients do.
            self.nick += "_"
            c.nick(self.nick)

    def say(self, text):
        self.conn.privmsg("#" + ROOM, text)


class JsonUser:
    """A JSON-line client (the full dialect) subscribed to the room."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.setblocking(False)
        self.buf = b""
        self.seen = []  # (seq_no, text)
        self.acked = set()
        self.send({"type": "HELLO", "proto": 2, "client": "irc_client.py/1"})
        self.send({"type": "SUBSCRIBE", "rooms": [ROOM]})
        self.n = 0

    def send(self, obj):
        self.sock.setblocking(True)
        self.sock.sendall((json.dumps(obj) + "\n").encode())
        self.sock.setblocking(False)

    def say(self, text):
        self.n += 1
        self.send({"type": "CHAT", "msg_id": f"jay-{self.n}", "room_id": ROOM,
                   "user": "jay", "payload": text})

    def poll(self):
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    raise SystemExit("FAIL: the JSON client's node closed its connection")
                self.buf += d
        except BlockingIOError:
            pass
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            m = json.loads(line)
            if m.get("type") == "SEQ_CHAT":
                self.seen.append((m["seq_no"], m["payload"]))
            elif m.get("type") == "CHAT_ACK":
                self.acked.add(m["msg_id"])


def pump(reactor, jay, secs):
    end = time.time() + secs
    while time.time() < end:
        reactor.process_once(timeout=0.02)
        jay.poll()


def wait(reactor, jay, what, pred, secs):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        pump(reactor, jay, 0.05)
    raise SystemExit(f"FAIL: timed out waiting for {what}")


def main():
    ports, irc_ports, pids = ARGS["ports"], ARGS["irc_ports"], ARGS["pids"]
    leader = ARGS["leader"]
    f1, f2 = [(leader + k) % len(ports) for k in (1, 2)]
    reactor = irc.client.Reactor()
    ann = IrcUser(reactor, "ann", irc_ports[f1])
    ben = IrcUser(reactor, "ben", irc_ports[leader])
    jay = JsonUser(ports[f2])
    wait(reactor, jay, "both IRC users in #talk", lambda: ann.joined and ben.joined, 15)
    log(f"ann on n{f1 + 1}, ben on n{leader + 1} (leader), jay (JSON) on n{f2 + 1}")

    sent = []
    ben_before = None
    for i in range(PER_CLIENT):
        if i == KILL_AT:
            ben_before = list(ben.seen)
            os.kill(pids[leader], signal.SIGKILL)
            log(f"SIGKILLed the leader n{leader + 1} (pid {pids[leader]}) mid-conversation")
            wait(reactor, jay, "ben to notice the dead node", lambda: ben.disconnects > 0, 10)
            ben.connect(irc_ports[f2])
            wait(reactor, jay, "ben back in #talk on another node", lambda: ben.joined, 20)
            log(f"ben reconnected to n{f2 + 1} and rejoined")
        for who, user in (("ann", ann), ("ben", ben), ("jay", jay)):
            text = f"{who} {i}"
            user.say(text)
            sent.append(text)
        # ben's echo is its acknowledgement (IRC has no other): it sends
        # the next only after it, so nothing of ben's is in flight when its
        # node dies (ann's and jay's are: their followers re-forward them).
        wait(reactor, jay, f"ben's echo of 'ben {i}'", lambda: f"ben {i}" in ben.seen, 20)
        pump(reactor, jay, 0.1)

    everyone = set(sent)
    wait(reactor, jay, "every message in every view",
         lambda: everyone <= set(ann.seen) and everyone <= set(ben.seen)
         and everyone <= {t for _, t in jay.seen}, 30)
    pump(reactor, jay, 1.0)  # anything doubled would arrive now

    order = [t for _, t in sorted(jay.seen)]
    seqs = [s for s, _ in jay.seen]
    assert seqs == sorted(seqs), f"jay's SEQ_CHATs out of order: {seqs}"
    assert len(order) == len(set(order)) == len(everyone), f"jay: doubled or missing: {order}"
    assert ann.disconnects == 0, "ann, on a follower, lost her connection"
    assert ann.seen == order, f"ann's order differs:\n{ann.seen}\n{order}"
    assert ann.times == len(ann.seen), "server-time tags missing on ann's messages"
    ben_after = ben.seen[len(ben_before):]
    for part, name in ((ben_before, "before"), (ben_after, "after")):
        # Within one connection, the JOIN replay and the live stream never
        # overlap: each message once.
        assert len(part) == len(set(part)), f"ben saw a message twice {name} the kill: {part}"
        assert part == [t for t in order if t in set(part)], f"ben's order {name} the kill differs: {part}"
    assert set(ben.seen) == everyone
    log(f"{len(order)} messages from IRC and JSON clients, in one order in every view")
    overlap = len(set(ben_before) & set(ben_after))
    log(f"ann kept her connection; ben reconnected; its JOIN replay re-showed {overlap} it had seen")
    log("PASS")


main()
