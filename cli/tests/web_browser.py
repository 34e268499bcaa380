#!/usr/bin/env python3
"""The web page served by every node at `/`, driven in real headless Chromium
(Debian `chromium` + `chromium-driver`, PyPI `selenium`) by
cli/tests/web_browser.rs.

Arguments: one JSON object {http: [port per node], ports: [client port per
node], leader: index, leader_pid, chorus: path of the binary, artifacts: dir}.

Scenario: 120 older messages are in the room before anyone opens the page;
alice's page is on the leader, bob's on a follower, carol is
`chorus client --plain` on the other follower. They chat; the leader is
SIGKILLed while alice's messages are in flight; everyone keeps chatting.
Checked: each page shows every message once, committed, in the same order as
the other page and as carol's client; alice's page failed over to another
node; older history loads on scroll; unread counts; the member list shows
presence; every control has a label. Prints `ORDER <room> <json msg_ids>` for
the Rust side to compare with the surviving nodes' HISTORY. Screenshots go to
`artifacts`. Every wait is bounded."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

ARGS = json.loads(sys.argv[1])
ROOM = "lobby"
SIDE = "side"
OLD = 120  # messages in the room before the pages open
T = 30  # seconds: a single wait (failover included)
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ok(what):
    print(f"ok: {what}", flush=True)


def wait(what, pred, timeout=T):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s: {what}")


# ---- JSON-line clients (the nodes' own protocol over TCP) ----------------


def seed_room(port, n):
    """n CHATs from an unnamed session as user 'seeder', all acknowledged."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    f = s.makefile("rwb")
    f.write(b'{"type":"HELLO","proto":2,"client":"web_browser.py/1"}\n')
    ids = []
    for i in range(n):
        mid = str(uuid.uuid4())
        ids.append(mid)
        line = {"type": "CHAT", "msg_id": mid, "room_id": ROOM, "user": "seeder",
                "payload": f"old message {i + 1}"}
        f.write((json.dumps(line) + "\n").encode())
    f.flush()
    acked = set()
    while len(acked) < n:
        m = json.loads(f.readline())
        assert m["type"] != "ERROR", m
        if m["type"] == "CHAT_ACK":
            acked.add(m["msg_id"])
    s.close()
    return ids


# ---- browsers --------------------------------------------------------------


class Page:
    def __init__(self, name, http_port, width, height, phone=False):
        self.name = name
        self.profile = tempfile.mkdtemp(prefix=f"chorus-web-{name}-")
        o = webdriver.ChromeOptions()
        o.binary_location = "/usr/bin/chromium"
        for f in CHROME_FLAGS + [f"--user-data-dir={self.profile}", f"--window-size={width},{height}"]:
            o.add_argument(f)
        if phone:  # a window cannot be that narrow: emulate the phone's screen
            metrics = {"width": width, "height": height, "pixelRatio": 2.0, "touch": True}
            o.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
        self.d.set_page_load_timeout(T)
        self.d.get(f"http://127.0.0.1:{http_port}/#{ROOM}")

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def by_id(self, i):
        return self.d.find_element(By.ID, i)

    def login(self):
        """Keyboard only: type the name, Tab to the room, Enter."""
        field = self.by_id("name-input")
        wait("the name prompt has focus", lambda: self.d.switch_to.active_element == field)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(self.name, Keys.TAB)
        room = self.d.switch_to.active_element
        assert room.get_attribute("id") == "room-input", room.get_attribute("id")
        assert room.get_attribute("value") == ROOM, "the room comes from the URL's #"
        outline = self.js("return getComputedStyle(document.activeElement).outlineStyle;")
        assert outline == "solid", f"no visible focus on the focused field: {outline}"
        room.send_keys(Keys.ENTER)
        wait(f"{self.name} connected", lambda: "Connected to node" in self.by_id("conn").text)

    def say(self, text):
        box = self.by_id("compose-text")
        box.send_keys(text, Keys.ENTER)

    def messages(self):
        return self.js("""
            return [...document.querySelectorAll('#messages li.msg')].map(li => ({
              id: li.dataset.msgId, seq: li.dataset.roomSeq ? +li.dataset.roomSeq : null,
              user: li.dataset.user, text: li.querySelector('.text').textContent,
              pending: li.classList.contains('pending'),
              mark: li.querySelector('.mark').getAttribute('aria-label')}));""")

    def committed(self):
        return [m for m in self.messages() if m["seq"] is not None]

    def conn(self):
        return self.by_id("conn").text

    def shot(self, tag):
        path = os.path.join(ARGS["artifacts"], f"{tag}.png")
        self.d.save_screenshot(path)
        print(f"screenshot: {path}", flush=True)

    def console_errors(self):
        try:
            logs = self.d.get_log("browser")
        except Exception:  # noqa: BLE001 - not every driver keeps the log
            return []
        return [l for l in logs if l.get("level") == "SEVERE"]

    def quit(self):
        self.d.quit()


def unlabelled(page):
    """Inputs and buttons a screen reader could not name."""
    return page.js("""
        const bad = [];
        for (const e of document.querySelectorAll('input, button')) {
          if (e.closest('[hidden]')) continue;
          const label = e.labels && e.labels.length ? e.labels[0].textContent.trim() : '';
          const name = e.getAttribute('aria-label') || label || e.textContent.trim();
          if (!name) bad.push(e.outerHTML.slice(0, 80));
        }
        return bad;""")


# ---- carol: chorus client --plain ------------------------------------------


class Carol:
    def __init__(self, port, peers):
        args = [ARGS["chorus"], "client", "--host", "127.0.0.1", "--port", str(port),
                "--peers", ",".join(peers), "--plain", "--name", "carol", "--room", ROOM,
                "--linger-ms", "8000", "--drain-secs", "60"]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = []
        self.err = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.p.stderr, self.err), daemon=True).start()

    @staticmethod
    def _read(pipe, into):
        for line in pipe:
            into.append(line.rstrip("\n"))

    name = "carol"

    def say(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def seen(self):
        """(user, text) of every delivered message, in order."""
        out = []
        for line in list(self.lines):
            if line.startswith("[seq ") and "] " in line:
                rest = line.split("] ", 1)[1]
                user, _, text = rest.partition(": ")
                out.append((user, text))
        return out

    def finish(self):
        self.p.stdin.close()
        code = self.p.wait(timeout=90)
        assert code == 0, f"carol's client exited {code}: {self.err[-20:]}"


# ---- the scenario ------------------------------------------------------------


def main():
    http, ports, leader = ARGS["http"], ARGS["ports"], ARGS["leader"]
    followers = [i for i in range(len(ports)) if i != leader]
    os.makedirs(ARGS["artifacts"], exist_ok=True)

    old_ids = seed_room(ports[followers[0]], OLD)
    ok(f"{OLD} older messages in #{ROOM}")

    alice = Page("alice", http[leader], 1280, 800)  # on the node that will die
    bob = Page("bob", http[followers[0]], 390, 844, phone=True)
    carol = Carol(ports[followers[1]], [f"127.0.0.1:{p}" for p in ports])
    pages = [alice, bob]
    try:
        for p in pages:
            p.login()
        ok("both pages logged in from the keyboard and connected")
        for p in pages:
            assert not unlabelled(p), unlabelled(p)
        ok("every input and button has a label")

        # The first page of history: the newest 50 of the older messages.
        for p in pages:
            wait(f"{p.name}: first page", lambda p=p: len(p.committed()) >= 50)
        first = [m["seq"] for m in bob.committed()]
        assert first == list(range(OLD - 49, OLD + 1)), first
        ok("the newest 50 messages show first")
        # Older history loads on scroll (to the top, again and again).
        for _ in range(10):
            bob.js("document.getElementById('log').scrollTop = 0;")
            time.sleep(0.4)
            if len(bob.committed()) >= OLD:
                break
        wait("bob: all older messages after scrolling up", lambda: len(bob.committed()) >= OLD)
        assert [m["id"] for m in bob.committed()] == old_ids, "older history out of order"
        ok("older history loaded on scroll, in order")

        # Conversation, phase 1.
        script1 = [(alice, "hi from alice"), (bob, "hi from bob"), (carol, "hi from carol"),
                   (alice, "alice 2"), (bob, "bob 2"), (carol, "carol 2")]
        for who, text in script1:
            who.say(text)
            time.sleep(0.15)
        texts1 = [t for _, t in script1]
        for p in pages:
            wait(f"{p.name}: phase 1 committed",
                 lambda p=p: all(t in [m["text"] for m in p.committed()] for t in texts1))
        ok("phase 1: every message on both pages")
        members = wait("bob sees alice and bob online", lambda: bob.js("""
            const on = [...document.querySelectorAll('#member-list li.online')].map(l => l.dataset.user);
            return on.includes('alice') && on.includes('bob') ? on : null;"""))
        ok(f"presence: online {members}")
        width = bob.js("return window.innerWidth;")
        assert width == 390, f"bob's page is {width} px wide, not a phone's 390"
        assert bob.by_id("toggle-rooms").is_displayed() and not bob.by_id("rooms").is_displayed()
        ok("bob's page is one column at phone width (rooms in a drawer)")

        # The topic, set from the keyboard on one page, shows on the other.
        alice.by_id("edit-topic").send_keys(Keys.ENTER)
        wait("the topic box has focus", lambda: alice.d.switch_to.active_element.get_attribute("id") == "topic-input")
        alice.d.switch_to.active_element.send_keys("failover drill at noon", Keys.ENTER)
        wait("bob sees the topic", lambda: bob.by_id("topic").text == "failover drill at noon")
        ok("topic set on one page shows on the other")
        alice.shot("desktop-alice")
        bob.shot("phone-bob")

        # Unread counts: alice joins #side and comes back; bob posts there.
        alice.by_id("join-input").send_keys(SIDE, Keys.ENTER)
        wait("alice in #side", lambda: alice.by_id("room-title").text == f"#{SIDE}")
        alice.js(f"document.querySelector('#room-list button[data-room=\"{ROOM}\"]').click();")
        wait("alice back in the lobby", lambda: alice.by_id("room-title").text == f"#{ROOM}")
        if bob.by_id("toggle-rooms").is_displayed():  # phone width: the rooms drawer
            bob.by_id("toggle-rooms").click()
            wait("bob's rooms drawer open", lambda: bob.by_id("join-input").is_displayed())
        bob.by_id("join-input").send_keys(SIDE, Keys.ENTER)
        wait("bob in #side", lambda: bob.by_id("room-title").text == f"#{SIDE}")
        bob.say("psst, over here")
        badge = wait("alice's unread badge for #side", lambda: alice.js(f"""
            const b = document.querySelector('#room-list button[data-room="{SIDE}"] .badge');
            return b ? b.textContent : null;"""))
        assert badge == "1", badge
        ok("unread count shows 1 for #side")
        bob.js(f"document.querySelector('#room-list button[data-room=\"{ROOM}\"]').click();")
        wait("bob back in the lobby", lambda: bob.by_id("room-title").text == f"#{ROOM}")

        # Phase 2: the leader dies while alice's messages are in flight.
        # Every message of one's own is first shown pending ("sending"):
        # record each one the page adds in that state.
        alice.js("""
            window.pendingSeen = [];
            new MutationObserver((muts) => {
              for (const m of muts) for (const n of m.addedNodes) {
                if (n.classList && n.classList.contains('pending')
                    && n.querySelector('.mark').getAttribute('aria-label') === 'sending') {
                  window.pendingSeen.push(n.querySelector('.text').textContent);
                }
              }
            }).observe(document.getElementById('messages'), {childList: true});""")
        alice.say("alice before the crash 1")
        alice.say("alice before the crash 2")
        os.kill(ARGS["leader_pid"], signal.SIGKILL)
        # At once: the page is losing or has lost its node; this one waits in
        # the outbox and goes out on the next connection.
        alice.say("alice while reconnecting")
        ok("leader SIGKILLed")
        script2 = [(bob, "bob during failover"), (carol, "carol during failover"),
                   (alice, "alice during failover"), (bob, "bob after"), (carol, "carol after"),
                   (alice, "alice after")]
        for who, text in script2:
            who.say(text)
            time.sleep(0.3)
        crash = ["alice before the crash 1", "alice before the crash 2", "alice while reconnecting"]
        texts = texts1 + crash + [t for _, t in script2]
        author = {t: who.name for who, t in script1 + script2}
        author.update({t: "alice" for t in crash})
        for p in pages:
            wait(f"{p.name}: every message committed", lambda p=p: all(
                t in [m["text"] for m in p.committed()] for t in texts), timeout=60)
            wait(f"{p.name}: nothing left pending", lambda p=p: not any(m["pending"] for m in p.messages()))
        mine = [t for t in texts if author.get(t) == "alice" and t not in texts1]
        assert alice.js("return window.pendingSeen;") == mine, alice.js("return window.pendingSeen;")
        ok("alice's messages showed pending, then delivered")
        killed_node = leader + 1
        assert f"node {killed_node} " not in alice.conn(), alice.conn()
        ok(f"alice's page failed over: {alice.conn()}")

        # Same order everywhere, each message once.
        a = [(m["id"], m["seq"]) for m in alice.committed()]
        b = [(m["id"], m["seq"]) for m in bob.committed()]
        tail = len(texts)
        assert a[-tail:] == b[-tail:], f"orders differ:\n{a[-tail:]}\n{b[-tail:]}"
        for p in pages:
            ids = [m["id"] for m in p.committed()]
            assert len(ids) == len(set(ids)), f"{p.name}: a message shows twice"
            seqs = [m["seq"] for m in p.committed()]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
            got = [m["text"] for m in p.committed()]
            for t in texts:
                assert got.count(t) == 1, f"{p.name}: {t!r} shows {got.count(t)} times"
            assert all(m["mark"] == "delivered" for m in p.committed() if m["user"] == p.name)
        ok(f"both pages: the {tail} new messages once each, in one order, marked delivered")
        order = bob.committed()
        wait("carol saw every message", lambda: all(
            (author[t], t) in carol.seen() for t in texts), timeout=60)
        carol_new = [x for x in carol.seen() if x[1] in texts]
        page_new = [(m["user"], m["text"]) for m in order if m["text"] in texts]
        assert carol_new == page_new, f"carol's order differs:\n{carol_new}\n{page_new}"
        ok("carol's plain client saw the same order")
        alice.shot("desktop-alice-after-failover")
        bob.shot("phone-bob-after-failover")
        for p in pages:
            errs = [e for e in p.console_errors() if "favicon" not in e.get("message", "")]
            # A refused connection to the dead node is expected; nothing else.
            errs = [e for e in errs if "/ws" not in e.get("message", "")]
            assert not errs, f"{p.name}: console errors {errs}"
        # A new name, from the keyboard: the others see the rename.
        bob.by_id("rename").send_keys(Keys.ENTER)
        field = bob.by_id("name-input")
        wait("bob's name prompt has focus", lambda: bob.d.switch_to.active_element == field)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("robert", Keys.ENTER)
        wait("bob is robert", lambda: bob.by_id("me-name").text == "robert")
        wait("alice sees the rename", lambda: alice.js("""
            return [...document.querySelectorAll('#messages li.event')]
              .some(e => e.textContent.includes('bob is now robert'));"""))
        wait("alice's member list shows robert", lambda: alice.js("""
            const names = [...document.querySelectorAll('#member-list li')].map(l => l.dataset.user);
            return names.includes('robert') && !names.includes('bob');"""))
        ok("a rename shows on the other page and in its member list")
        print(f"ORDER {ROOM} {json.dumps([m['id'] for m in order])}", flush=True)
        carol.finish()
        ok("done")
    except Exception:
        for p in pages:
            try:
                p.shot(f"failure-{p.name}")
                print(f"{p.name} conn: {p.conn()}\n{p.name} messages: {p.messages()[-12:]}", flush=True)
                print(f"{p.name} console: {p.console_errors()}", flush=True)
            except Exception as e:  # noqa: BLE001 - best effort on the way out
                print(f"({p.name}: {e})")
        print(f"carol stdout: {carol.lines[-12:]}\ncarol stderr: {carol.err[-12:]}", flush=True)
        raise
    finally:
        for p in pages:
            p.quit()
        if carol.p.poll() is None:
            carol.p.kill()


if __name__ == "__main__":
    main()
