"""Secrets never show — not whole, not a prefix, not a suffix, not encoded (issue 12, Deliver 2).

The command adapter's token (``WARROOM_CMD_TOKEN``, named in the config) is printed by a fake
kubectl in every way a real tool leaks one: minus its last four characters, minus its first
four, URL-encoded, base64 inside a Basic auth header. The end-to-end case runs the real
``warroom`` in tmux — commander and watcher — and scans every screen it captures, the database
file, the CLI's messages and every export for every 4-character piece of the token.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from adapters import secrets
from console.config import Config, secret_values
from console.store import Store

from .support import REPO, leaks, pieces, token

TOKEN = token(seed=12)


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    secrets.forget_all()
    yield
    secrets.forget_all()


def every_leak_form(secret: str) -> list[str]:
    """What a careless tool prints: the secret cut at either end, a fragment, encoded."""
    basic = base64.b64encode(f"deploy-bot:{secret}".encode()).decode()
    return [
        secret, secret[:-4], secret[4:], secret[7:19], quote(secret + "/="),
        base64.b64encode(secret.encode()).decode(), f"Authorization: Basic {basic}",
        base64.urlsafe_b64encode(b"x" + secret.encode()).decode(),
    ]


# --- the one function ----------------------------------------------------------------------------


def test_no_four_character_piece_of_a_secret_survives_the_scrub() -> None:
    secrets.register([TOKEN])
    for form in every_leak_form(TOKEN):
        text = f"kubectl: error: token {form} rejected (retry later)"
        scrubbed = secrets.scrub(text)
        assert not leaks(TOKEN, [("scrubbed", scrubbed)]), scrubbed
        assert "***" in scrubbed and scrubbed.startswith("kubectl: error: token ")
        assert scrubbed.endswith("rejected (retry later)")


def test_every_substring_of_four_or_more_is_scrubbed_wherever_it_sits() -> None:
    secrets.register([TOKEN])
    for size in (4, 5, 9, len(TOKEN) - 1):
        for start in range(0, len(TOKEN) - size + 1, 3):
            piece = TOKEN[start:start + size]
            assert piece not in secrets.scrub(f"a{piece}b"), piece


def test_text_without_a_secret_is_untouched_and_a_short_secret_is_not_scrubbed() -> None:
    secrets.register([TOKEN, "abc"])
    text = "canary 3.36% > limit 2.00% at 22:14 on redaction-api v1.4.3"
    assert secrets.scrub(text) is text
    assert secrets.scrub("abcabc") == "abcabc"  # three characters are everywhere; not a secret


def test_a_hash_that_holds_four_hex_digits_of_a_secret_by_chance_is_left_whole() -> None:
    secrets.register(["QXZJ-1f3c-ab09-QXZJ"])
    digest = "00" * 10 + "1f3c" + "00" * 14 + "ab09" + "0" * 8
    assert len(digest) == 64
    assert secrets.scrub(f"head #7 sha256:{digest}") == f"head #7 sha256:{digest}"
    assert "1f3c" not in secrets.scrub("token part 1f3c-ab09 printed")


def test_a_webhook_url_is_scrubbed_by_its_secret_parts_not_its_host() -> None:
    url = "https://hooks.slack.com/services/T0QXZJ12/B0KVW345/QxZjKvWqxzjkvwQXZJKVWqxz"
    secrets.register([url])
    scrubbed = secrets.scrub(f"chat webhook {url} answered 404; see https://hooks.slack.com")
    assert "T0QXZJ12" not in scrubbed and "QxZjKvWq" not in scrubbed
    assert "https://hooks.slack.com/services/***/***/***" in scrubbed
    assert scrubbed.endswith("see https://hooks.slack.com")


def test_the_configured_secrets_are_the_values_of_the_named_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_CMD_TOKEN", TOKEN)
    monkeypatch.setenv("WARROOM_SEC_HOOK", "https://chat.example/hook/QXZJ1234")
    config = Config.model_validate({
        "metrics": {"kind": "sim"},
        "traffic": {"kind": "command", "env": {"KUBE_TOKEN": {"env": "WARROOM_CMD_TOKEN"}},
                    "actions": {"set_weight": {"argv": ["true"]},
                                "current_weight": {"argv": ["true"]}}},
        "deploy": {"kind": "command", "actions": {"current_version": {"argv": ["true"]},
                                                  "rollback": {"argv": ["true"]}}},
        "notify": {"webhook_url_env": "WARROOM_SEC_HOOK"},
    })
    assert sorted(secret_values(config)) == sorted([TOKEN, "https://chat.example/hook/QXZJ1234"])


def test_the_record_never_holds_a_piece_of_a_secret(tmp_path: Path) -> None:
    secrets.register([TOKEN])
    with Store(tmp_path / "w.db") as store:
        store.create_incident("alice", {"title": "t", "commander": "alice"})
        for form in every_leak_form(TOKEN):
            store.append(1, "note_added", f"alice{TOKEN[:5]}", {"text": f"pasted {form}",
                                                                "nested": [{"x": form}]})
        assert store.verify(1)[1] is None  # scrubbed before it was hashed: the chain holds
    raw = (tmp_path / "w.db").read_bytes().decode("utf-8", "replace")
    assert not leaks(TOKEN, [("database file", raw)])


# --- the real command, every screen ---------------------------------------------------------------

FAKE_KUBECTL = r'''
import base64, os, sys, urllib.parse
token = os.environ["KUBE_TOKEN"]
action = sys.argv[1]
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weight")
basic = base64.b64encode(("deploy-bot:" + token).encode()).decode()
leak = (f"token {token[:-4]} / {token[4:]} / {urllib.parse.quote(token + '/=')} / "
        f"Authorization: Basic {basic}")
if action == "current_weight":
    print(open(state).read() if os.path.exists(state) else "0")
elif action == "current_version":
    print("v1.4.2" if os.path.exists(state + ".rolled") else "v1.4.3")
    print(f"debug: {leak}", file=sys.stderr)
elif action == "set_weight":
    print(f"error: Unauthorized ({leak})", file=sys.stderr)
    sys.exit(1)
elif action == "rollback":
    for line in ("rolling back with " + leak, "rollout status: " + token[:-4] + " 1/2",
                 base64.b64encode(token.encode()).decode()):
        print(line, flush=True)
    open(state + ".rolled", "w").close()
    open(state, "w").write("0")
'''

CONFIG = """
[roster]
security-lead = ["sl-person"]
platform-lead = ["pl-person"]

[metrics]
kind = "sim"

[monitoring]
poll_interval_s = 0.5

[rollback]
verification_hold_s = 1

[canary]
default_plan = "quick"

[canary.plans.quick]
stages = [{{ percent = 1, hold_s = 1 }}, {{ percent = 100, hold_s = 0 }}]

[traffic]
kind = "command"
timeout_s = 20

[traffic.env]
KUBE_TOKEN = {{ env = "WARROOM_CMD_TOKEN" }}

[traffic.actions.set_weight]
argv = [{python}, {fake}, "set_weight", "{{percent}}"]

[traffic.actions.current_weight]
argv = [{python}, {fake}, "current_weight"]

[deploy]
kind = "command"
timeout_s = 20

[deploy.env]
KUBE_TOKEN = {{ env = "WARROOM_CMD_TOKEN" }}

[deploy.actions.current_version]
argv = [{python}, {fake}, "current_version"]

[deploy.actions.rollback]
argv = [{python}, {fake}, "rollback", "{{target}}"]
"""


class Screen:
    """One tmux session on a private socket; every capture is kept for the scan."""

    def __init__(self, socket: str, cwd: Path, env: dict[str, str], captures: list) -> None:
        self.socket = socket
        self.name = f"sec-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd
        self.env = env
        self.captures = captures

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10).stdout

    def start(self, argv: list[str]) -> None:
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        command = (f"env {assigns} {shlex.join(argv)}; echo; echo \"warroom exited with $?\"; "
                   "sleep 120")
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s",
                        self.name, "-x", "200", "-y", "50", "-c", str(self.cwd), command],
                       check=True, timeout=10, capture_output=True)

    def screen(self) -> str:
        text = self._tmux("capture-pane", "-p", "-t", self.name)
        self.captures.append((f"{self.name} screen", text))
        return text

    def send(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", self.name, key)

    def wait_for(self, what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while what not in screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:g}s still waiting for {what!r}:\n{screen}")
            time.sleep(0.1)
            screen = self.screen()
        return screen

    def wait_gone(self, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while what in self.screen():
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:g}s {what!r} is still on the screen")
            time.sleep(0.1)

    def kill(self) -> None:
        self._tmux("kill-session", "-t", self.name)


@pytest.fixture
def tmux_world(tmp_path: Path) -> Iterator[tuple[Callable[[], Screen], list, dict[str, str]]]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("tmux is missing and CI=true", pytrace=False)
        pytest.skip("tmux is not installed: this case reads the real command's screens")
    env = {"PYTHONPATH": str(REPO), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "TERM": "screen-256color",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "WARROOM_CMD_TOKEN": TOKEN}
    socket = f"warroom-sec-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    captures: list[tuple[str, str]] = []
    sessions: list[Screen] = []

    def session() -> Screen:
        screen = Screen(socket, tmp_path, env, captures)
        sessions.append(screen)
        return screen

    try:
        yield session, captures, env
    finally:
        for screen in sessions:
            screen.kill()


def test_no_piece_of_the_token_on_any_screen_in_the_record_or_an_export(
        tmp_path: Path, tmux_world: tuple[Callable[[], Screen], list, dict[str, str]]) -> None:
    session, captures, env = tmux_world
    fake = tmp_path / "fake-kubectl.py"
    fake.write_text(FAKE_KUBECTL)
    config = tmp_path / "warroom.toml"
    config.write_text(CONFIG.format(python=json.dumps(sys.executable), fake=json.dumps(str(fake))))
    db = tmp_path / "w.db"
    warroom = [sys.executable, "-m", "console.cli", "--config", str(config), "--db", str(db)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*warroom, *args], capture_output=True, text=True, timeout=60,
                              cwd=tmp_path, env={**os.environ, **env})
        captures.append((f"warroom {args[0]} stdout", done.stdout))
        captures.append((f"warroom {args[0]} stderr", done.stderr))
        return done

    declared = cli("declare", "--title", f"token {TOKEN[2:-2]} leaked in a log", "--priority",
                   "P0", "--category", "security", "--service", "redaction-api",
                   "--from-version", "v1.4.2", "--to-version", "v1.4.3",
                   "--bypass", "canary=harm is ongoing; canary cannot match")
    assert declared.returncode == 0, declared.stderr
    for role, person in (("security-lead", "sl-person"), ("platform-lead", "pl-person")):
        relayed = cli("approve", "1", "--role", role, "--relayed-from", person, "--evidence",
                      f"bridge call, pasted {TOKEN[:-4]}")
        assert relayed.returncode == 0, relayed.stderr

    commander = session()
    commander.start([*warroom, "open", "1"])
    commander.wait_for("COMMANDER", 30)
    commander.wait_for("preflight ✓ passed", 20)
    watcher = session()
    watcher.start([*warroom, "watch", "1"])
    watcher.wait_for("WATCHING", 30)

    commander.send("c")
    commander.wait_for("Rollback compatibility checklist", 10)
    commander.send("y")
    commander.wait_for("ready to advance to 1%", 20)
    commander.send("a")
    commander.wait_for("Advance canary 0% → 1%?", 10)  # the advance form
    commander.send("y")
    commander.wait_for("FAILED", 30)  # set_weight failed, printing the token's pieces
    watcher.wait_for("FAILED", 30)
    commander.send("g")  # the guardrail detail
    commander.wait_for("Escape closes", 10)
    commander.send("Escape")
    commander.wait_gone("Escape closes", 10)
    commander.send("R")
    commander.wait_for("ROLL BACK", 10)
    commander.send("y")
    commander.wait_for("ROLLBACK VERIFIED", 60)
    commander.wait_for("Rollback: ", 30)  # progress lines reached the timeline
    watcher.wait_for("Rollback: ", 30)
    commander.send("e")
    commander.wait_for("PIR", 20)
    for screen in (commander, watcher):
        screen.screen()
        screen.send("q")
        screen.wait_for("warroom exited with 0", 20)

    for fmt in ("pir", "comms", "json"):
        exported = cli("export", "1", "--format", fmt)
        assert exported.returncode == 0, exported.stderr
    cli("verify", "1")
    cli("list")
    for written in tmp_path.glob("*.md"):
        captures.append((written.name, written.read_text()))
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT actor, payload FROM events").fetchall()
    captures.append(("events table", json.dumps(rows, ensure_ascii=False)))
    captures.append(("database file", db.read_bytes().decode("utf-8", "replace")))

    assert not leaks(TOKEN, captures), f"pieces of {TOKEN} ({len(pieces(TOKEN))} of them) leaked"
    # the fake really printed the token's pieces, and they went through the console
    record = json.dumps(rows, ensure_ascii=False)
    assert "***" in record and "Unauthorized" in record
    screens = [text for where, text in captures if where.endswith("screen")]
    assert len(screens) > 20 and any("***" in text for text in screens)
