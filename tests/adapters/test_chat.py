"""Chat and paging targets through apprise (adapters/chat.py), against a chat service on
127.0.0.1 that records what it receives (tests/support/chat_server.py): Mattermost's incoming
webhook (its answers as Mattermost gives them) and a plain JSON receiver.

Pinned: the message arrives in the service's own shape; the URL, a secret, is read from its
variable at send time and never shown (errors name the variable and the scheme); a refusal says
what the service answered; a target that never finishes answering is cut at the deadline;
``[notify] webhook_url_env`` still posts ``{"text": ...}`` to a URL that is no service's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adapters.base import AdapterError, AdapterTimeout
from adapters.chat import AppriseNotifier, ChatWebhook, apprise_knows, scheme_of
from tests.support.chat_server import ChatServer

TOKEN = "w8q7a9bmupgjxkhq3w4rf1yj1e"
MESSAGE = "[INC-7 P0 payments] ROLLBACK to v1.4.2 requested (automatic) at canary weight 10%"


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_mattermost_gets_its_own_payload(chat: ChatServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_MATTERMOST", f"mmost://127.0.0.1:{chat.port}/{TOKEN}")
    notifier = AppriseNotifier("WARROOM_MATTERMOST", deadline_s=5)
    assert notifier.target == "WARROOM_MATTERMOST"
    notifier.send(MESSAGE)
    (post,) = chat.received
    assert post.path == f"/hooks/{TOKEN}"
    assert post.body["text"] == MESSAGE  # Mattermost's incoming-webhook shape


def test_a_json_receiver(chat: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_PAGER", f"json://127.0.0.1:{chat.port}/incidents")
    AppriseNotifier("WARROOM_PAGER", deadline_s=5).send(MESSAGE)
    (post,) = chat.received
    assert post.path == "/incidents"
    assert post.body["message"] == MESSAGE and post.body["type"] == "info"


def test_a_refusal_says_what_the_service_answered_and_never_the_url(
        chat: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_MATTERMOST", f"mmost://127.0.0.1:{chat.port}/revokedtoken77x")
    with pytest.raises(AdapterError) as caught:
        AppriseNotifier("WARROOM_MATTERMOST", deadline_s=5).send(MESSAGE)
    text = str(caught.value)
    assert text.startswith("WARROOM_MATTERMOST (mmost): ")
    assert "400" in text
    assert "revokedtoken77x" not in text and str(chat.port) not in text
    chat.status = 502
    monkeypatch.setenv("WARROOM_MATTERMOST", f"mmost://127.0.0.1:{chat.port}/{TOKEN}")
    with pytest.raises(AdapterError, match="502"):
        AppriseNotifier("WARROOM_MATTERMOST", deadline_s=5).send(MESSAGE)


def test_a_target_that_drips_is_cut_at_the_deadline(chat: ChatServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    chat.drip = True
    monkeypatch.setenv("WARROOM_MATTERMOST", f"mmost://127.0.0.1:{chat.port}/{TOKEN}")
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match=r"WARROOM_MATTERMOST \(mmost\): no complete answer "
                                             r"within 0\.5 s"):
        AppriseNotifier("WARROOM_MATTERMOST", timeout_s=5, deadline_s=0.5).send(MESSAGE)
    assert time.monotonic() - started < 0.5 + 2.5  # the deadline, and its grace, on a busy host


def test_unknown_or_unset_urls_are_refused_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARROOM_NOWHERE", raising=False)
    with pytest.raises(AdapterError, match=r"WARROOM_NOWHERE .* is not set or empty"):
        AppriseNotifier("WARROOM_NOWHERE").send(MESSAGE)
    monkeypatch.setenv("WARROOM_NOWHERE", "gopher://example.invalid/secretpath")
    with pytest.raises(AdapterError) as caught:
        AppriseNotifier("WARROOM_NOWHERE").send(MESSAGE)
    assert "not a URL apprise knows" in str(caught.value)
    assert "secretpath" not in str(caught.value)


def test_the_webhook_setting_still_posts_text_to_a_plain_url(
        chat: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_WEBHOOK_URL", f"http://127.0.0.1:{chat.port}/services/hook")
    ChatWebhook("WARROOM_WEBHOOK_URL", deadline_s=5).send(MESSAGE)
    (post,) = chat.received
    assert post.body == {"text": MESSAGE}
    # an apprise URL in the same setting goes through apprise
    monkeypatch.setenv("WARROOM_WEBHOOK_URL", f"mmost://127.0.0.1:{chat.port}/{TOKEN}")
    ChatWebhook("WARROOM_WEBHOOK_URL", deadline_s=5).send(MESSAGE)
    assert chat.received[-1].path == f"/hooks/{TOKEN}"


@pytest.mark.parametrize(("url", "known"), [
    ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", True),
    ("https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", True),
    ("pagerduty://integrationkey@apikey", True),
    ("https://chat.example.com/hooks/abc", False),
])
def test_a_services_own_webhook_url_is_recognised(url: str, known: bool) -> None:
    # such a URL in webhook_url_env is sent in the service's shape ({"text"} is Slack's only:
    # Discord refuses it)
    assert apprise_knows(url) is known
    assert scheme_of(url) in ("https", "pagerduty")
