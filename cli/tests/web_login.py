#!/usr/bin/env python3
"""The web page's login form in real headless Chromium against three nodes
with `[accounts]` on, driven by cli/tests/web_login.rs (which created the
account `alice` with `chorus user add`).

Arguments: one JSON object {http: [port per node], ports: [client port per
node], leader: index, leader_pid, password: alice's, artifacts: dir}.

Scenario: alice's page (phone width) is on the leader: the dialog asks for a
password (the node's HELLO says accounts are on) and offers "continue as
guest" and "register"; a wrong password shows an error, the right one logs
in (keyboard only); her message carries `alice`. dave registers from the
dialog and posts as `dave`. bob's page on a follower
continues as a guest and is shown as `~bob`, on his own page and on
alice's. The leader is SIGKILLed with a message of alice's in flight: her
page fails over, logs in again by itself, and that message and the next
carry `alice` (not `~alice`); the password was never put in localStorage.
Last, repeated wrong passwords on another page show the rate limit with its
wait. Prints `ALICE <json msg_ids>` for the Rust side to check the surviving
nodes' HISTORY. Screenshots go to `artifacts`. Every wait is bounded."""

import json
import os
import signal
import sys

from selenium.webdriver.common.keys import Keys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import web_browser as wb  # noqa: E402 - Page, wait, ok; reads the same ARGS keys

ARGS = json.loads(sys.argv[1])
wait, ok = wb.wait, wb.ok


def visible(page, i):
    return page.by_id(i).is_displayed()


def error_text(page):
    return page.by_id("login-error").text


def dialog_open(page):
    return page.js("return document.getElementById('login').open;")


def wait_answer(page, what):
    """The login error line once the node answered (not 'Logging in…')."""
    return wait(what, lambda: (t := error_text(page)) and not t.startswith(("Logging in", "Registering")) and t)


def by_text(page, text):
    return [m for m in page.messages() if m["text"] == text]


def main():
    http, leader = ARGS["http"], ARGS["leader"]
    followers = [i for i in range(len(http)) if i != leader]
    os.makedirs(ARGS["artifacts"], exist_ok=True)
    password = ARGS["password"]

    alice = wb.Page("alice", http[leader], 390, 844, phone=True)  # on the node that will die
    bob = wb.Page("bob", http[followers[0]], 1280, 800)
    pages = [alice, bob]
    try:
        # The node's HELLO says accounts are on: the dialog asks for a password.
        for p in pages:
            wait(f"{p.name}: the password field shows", lambda p=p: visible(p, "password-input"))
            assert visible(p, "guest-go") and visible(p, "register-go"), "guests and registration are open"
            assert p.by_id("login-go").text == "Log in", p.by_id("login-go").text
            assert not wb.unlabelled(p), wb.unlabelled(p)
        ok("the dialog offers log in, register and continue as guest, all labelled")

        # Keyboard only: name, Tab (room), Tab (password), Enter.
        field = alice.by_id("name-input")
        wait("the name field has focus", lambda: alice.d.switch_to.active_element == field)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys("alice", Keys.TAB)
        assert alice.d.switch_to.active_element.get_attribute("id") == "room-input"
        alice.d.switch_to.active_element.send_keys(Keys.TAB)
        pw = alice.d.switch_to.active_element
        assert pw.get_attribute("id") == "password-input", pw.get_attribute("id")
        assert pw.get_attribute("type") == "password"
        pw.send_keys("not-her-password", Keys.ENTER)
        err = wait_answer(alice, "alice: the wrong password is answered")
        assert err == "Wrong user name or password.", err
        assert dialog_open(alice), "the dialog stays open after a wrong password"
        assert alice.by_id("me-kind").text == "not logged in", alice.by_id("me-kind").text
        alice.shot("alice-wrong-password")
        ok(f"a wrong password shows: {err!r}")

        pw = alice.d.switch_to.active_element
        assert pw.get_attribute("id") == "password-input", "focus goes back to the password"
        pw.send_keys(password, Keys.ENTER)
        wait("alice logged in and connected",
             lambda: not dialog_open(alice) and "Connected to node" in alice.conn())
        assert alice.by_id("me-name").text == "alice", alice.by_id("me-name").text
        assert alice.by_id("me-kind").text == "logged in", alice.by_id("me-kind").text
        assert not visible(alice, "rename"), "an account's name cannot be changed"
        ok(f"alice logged in: {alice.conn()}")

        # bob continues as a guest on a follower.
        f = bob.by_id("name-input")
        f.send_keys(Keys.CONTROL, "a")
        f.send_keys("bob")
        bob.by_id("guest-go").click()
        wait("bob connected", lambda: "Connected to node" in bob.conn())
        assert bob.by_id("me-name").text == "~bob", bob.by_id("me-name").text
        assert bob.by_id("me-kind").text == "guest", bob.by_id("me-kind").text
        ok("bob continued as a guest, shown as ~bob")

        alice.say("hello from alice")
        bob.say("hello from bob")
        for p in pages:
            wait(f"{p.name}: both messages committed", lambda p=p: all(
                any(m["seq"] is not None for m in by_text(p, t)) for t in ["hello from alice", "hello from bob"]))
            users = {m["text"]: m["user"] for m in p.committed()}
            assert users["hello from alice"] == "alice", users
            assert users["hello from bob"] == "~bob", users
            shown = p.js("""return [...document.querySelectorAll('#messages li.msg')]
                .map(li => li.querySelector('.who').textContent);""")
            assert "~bob" in shown and "alice" in shown, shown
        ok("alice's message shows `alice`, bob's `~bob`, on both pages")
        bob.shot("bob-guest")

        # The leader dies with a message of alice's on its way.
        alice.say("alice before the crash")
        os.kill(ARGS["leader_pid"], signal.SIGKILL)
        alice.say("alice while reconnecting")
        ok("leader SIGKILLed")
        killed = f"node {leader + 1} "
        wait("alice's page fails over and logs in again",
             lambda: "Connected to node" in (c := alice.conn()) and killed not in c, timeout=60)
        assert not dialog_open(alice), "the page logged in again without asking"
        assert alice.by_id("me-name").text == "alice"
        alice.say("alice after the failover")
        crash = ["alice before the crash", "alice while reconnecting", "alice after the failover"]
        for p in pages:
            wait(f"{p.name}: alice's messages committed", lambda p=p: all(
                any(m["seq"] is not None for m in by_text(p, t)) for t in crash), timeout=60)
            for t in crash:
                users = [m["user"] for m in by_text(p, t)]
                assert users == ["alice"], f"{p.name}: {t!r} shown from {users}"
        ok(f"after the failover ({alice.conn()}) alice's messages still carry `alice`")
        stored = alice.js("return JSON.stringify(Object.assign({}, localStorage));")
        assert password not in stored, "the password must not be kept in localStorage"
        ok("the password is not in localStorage")
        alice.shot("alice-after-failover")
        ids = [m["id"] for t in ["hello from alice"] + crash for m in by_text(alice, t)]
        print(f"ALICE {json.dumps(ids)}", flush=True)

        # Registration is open: a new account from the dialog, logged in at once.
        dave = wb.Page("dave", http[followers[0]], 390, 844, phone=True)
        pages.append(dave)
        wait("dave: the register button shows", lambda: visible(dave, "register-go"))
        dave.by_id("name-input").send_keys(Keys.CONTROL, "a")
        dave.by_id("name-input").send_keys("dave")
        dave.by_id("password-input").send_keys("short")
        dave.by_id("register-go").click()
        assert error_text(dave) == "A password has at least 8 bytes.", error_text(dave)
        dave.by_id("password-input").send_keys("daves-new-password")
        dave.by_id("register-go").click()
        wait("dave registered and connected",
             lambda: not dialog_open(dave) and "Connected to node" in dave.conn())
        assert dave.by_id("me-name").text == "dave" and dave.by_id("me-kind").text == "logged in"
        dave.say("dave is new here")
        wait("dave's message committed as dave", lambda: [m["user"] for m in dave.committed()
                                                         if m["text"] == "dave is new here"] == ["dave"])
        ok("dave registered from the page and posts as dave")

        # Repeated wrong passwords: the rate limit shows with its wait.
        eve = wb.Page("eve", http[followers[1]], 1280, 800)
        pages.append(eve)
        wait("eve: the password field shows", lambda: visible(eve, "password-input"))
        eve.by_id("name-input").send_keys(Keys.CONTROL, "a")
        eve.by_id("name-input").send_keys("eve")
        seen = []
        for _ in range(8):
            eve.by_id("password-input").send_keys("guessing-wrong", Keys.ENTER)
            seen.append(wait_answer(eve, "eve: a wrong password is answered"))
            if seen[-1].startswith("Too many failed logins"):
                break
            eve.js("document.getElementById('login-error').textContent = '';")
        last = seen[-1]
        assert last.startswith("Too many failed logins: wait ") and last.endswith(" s, then try again."), seen
        assert seen[0] == "Wrong user name or password.", seen
        eve.shot("eve-rate-limited")
        ok(f"after {len(seen) - 1} wrong passwords: {last!r}")
        ok("done")
    except Exception:
        for p in pages:
            try:
                p.shot(f"failure-{p.name}")
                print(f"{p.name} conn: {p.conn()}\n{p.name} messages: {p.messages()[-12:]}", flush=True)
                print(f"{p.name} error: {error_text(p)!r} console: {p.console_errors()}", flush=True)
            except Exception as e:  # noqa: BLE001 - best effort on the way out
                print(f"({p.name}: {e})")
        raise
    finally:
        for p in pages:
            p.quit()


if __name__ == "__main__":
    main()
