"""The engine tells every chat target, and records each post and each failure by its target.

``[notify] urls_env`` names variables holding apprise URLs; here a Mattermost webhook and a JSON
receiver on 127.0.0.1 (tests/support/chat_server.py), and a Mattermost webhook whose token was
revoked. A rollback is announced to all three: two ``notification_sent`` and one
``notification_failed``, each naming its target (the variable, never the URL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import NotifySettings
from console.model import Kind
from tests.integration.engine_support import LiveIncident, make_config
from tests.support.chat_server import ChatServer

TOKEN = "w8q7a9bmupgjxkhq3w4rf1yj1e"


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def test_each_target_is_told_and_recorded(tmp_path: Path, chat: ChatServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARROOM_MATTERMOST", f"mmost://127.0.0.1:{chat.port}/{TOKEN}")
    monkeypatch.setenv("WARROOM_PAGER", f"json://127.0.0.1:{chat.port}/incidents")
    monkeypatch.setenv("WARROOM_OLD_HOOK", f"mmost://127.0.0.1:{chat.port}/revokedtoken77x")
    config = make_config(metrics={"kind": "sim"}, traffic={"kind": "sim"},
                         deploy={"kind": "sim"}, guardrails=[])
    config = config.model_copy(update={"notify": NotifySettings(
        urls_env=["WARROOM_MATTERMOST", "WARROOM_PAGER", "WARROOM_OLD_HOOK"], deadline_s=5)})
    run = LiveIncident(tmp_path, config, "payments")
    try:
        run.prepare()
        run.engine.advance()
        run.engine.request_rollback("the canary pages")
        deadline = time.monotonic() + 20
        while len(run.events(Kind.NOTIFIED)) + len(run.events(Kind.NOTIFY_FAILED)) < 3:
            assert time.monotonic() < deadline, run.describe()
            time.sleep(0.05)
        sent = {e.payload["target"]: e.payload for e in run.events(Kind.NOTIFIED)}
        failed = {e.payload["target"]: e.payload for e in run.events(Kind.NOTIFY_FAILED)}
        assert set(sent) == {"WARROOM_MATTERMOST", "WARROOM_PAGER"}
        assert set(failed) == {"WARROOM_OLD_HOOK"}
        assert "400" in failed["WARROOM_OLD_HOOK"]["error"]
        assert "revokedtoken77x" not in str(failed)
        assert "ROLLBACK to v1.4.1 requested" in sent["WARROOM_PAGER"]["message"]
        texts = [r.body.get("text") or r.body.get("message") for r in chat.received]
        assert sum("ROLLBACK to v1.4.1 requested" in str(t) for t in texts) == 3
    finally:
        run.close()


@pytest.mark.parametrize(("value", "words"), [
    (None, "environment variable WARROOM_TEST_CHAT is not set or empty (it holds an apprise URL)"),
    ("gopher://chat.example/secretpath", "$WARROOM_TEST_CHAT holds a URL apprise does not know "
                                         "(it takes slack://"),
])
def test_check_config_refuses_a_target_it_cannot_use(tmp_path: Path, value: str | None,
                                                     words: str) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    config = tmp_path / "warroom.toml"
    config.write_text('[notify]\nurls_env = ["WARROOM_TEST_CHAT"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    if value is not None:
        env["WARROOM_TEST_CHAT"] = value
    done = subprocess.run([sys.executable, "-m", "console.cli", "check-config", str(config)],
                          cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": str(repo)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{config}: notify.urls_env: {words}" in done.stderr
    assert "secretpath" not in done.stderr


def test_check_config_says_where_people_are_told(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    config = tmp_path / "warroom.toml"
    config.write_text('[notify]\nwebhook_url_env = "WARROOM_TEST_HOOK"\n'
                      'urls_env = ["WARROOM_TEST_CHAT"]\n'
                      '[statuspage]\npage_id = "kctbh9vrtdwd"\n'
                      'api_key_env = "WARROOM_TEST_PAGE_KEY"\n'
                      'components = { "payments" = "8kbf7d35c070" }\n'
                      '[gate]\nnamespace = "test"\ntoken_env = "WARROOM_TEST_GATE_TOKEN"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env.update(WARROOM_TEST_HOOK="https://chat.example/hooks/Hq7Zt2Kx9w",
               WARROOM_TEST_CHAT=f"mmost://127.0.0.1:9/{TOKEN}",
               WARROOM_TEST_PAGE_KEY="b3f1c9e2-7a51-4d0e", WARROOM_TEST_GATE_TOKEN="g8Xk2mQ7vP")
    done = subprocess.run([sys.executable, "-m", "console.cli", "check-config", str(config)],
                          cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ("Chat: webhook $WARROOM_TEST_HOOK, apprise $WARROOM_TEST_CHAT (each post within "
            "10s, recorded)") in out
    assert ("Status page: https://api.statuspage.io page kctbh9vrtdwd, key from "
            "$WARROOM_TEST_PAGE_KEY; components: payments → 8kbf7d35c070") in out
    assert ("Flagger gate: `warroom gate ID` on 127.0.0.1:8795, canary {service}.test (token "
            "from $WARROOM_TEST_GATE_TOKEN)") in out
    for secret in ("Hq7Zt2Kx9w", TOKEN, "b3f1c9e2", "g8Xk2mQ7vP"):
        assert secret not in out
