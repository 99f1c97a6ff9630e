"""The status page adapter (adapters/statuspage.py) against the Statuspage API stand-in on
127.0.0.1 (adapters/sim_statuspage.py): what is sent, in the API's shape, and each answer the
real API gives — the incident, 401, 422, 420 — and a create whose answer is lost (adopted from
the page's unresolved incidents, never created twice)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.base import AdapterError, AdapterTimeout
from adapters.sim_statuspage import StatuspageStub
from adapters.statuspage import StatuspageClient, StatusPost

COMPONENT = "8kbf7d35c070"
BODY = ("We are investigating an issue affecting Support transcripts.\n\n"
        "What happened: Since 21:30 UTC, exported transcripts may include unredacted fields.")


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatuspageStub]:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with StatuspageStub() as stub:
        monkeypatch.setenv("WARROOM_STATUSPAGE_KEY", stub.api_key)
        yield stub


def client(page: StatuspageStub, **overrides: float) -> StatuspageClient:
    return StatuspageClient(api_url=page.url, page_id=page.page_id,
                            api_key_env="WARROOM_STATUSPAGE_KEY",
                            timeout_s=overrides.get("timeout_s", 2.0),
                            deadline_s=overrides.get("deadline_s", 5.0))


def create() -> StatusPost:
    return StatusPost("create", "Issue affecting Support transcripts", "investigating", BODY,
                      {COMPONENT: "major_outage"})


def test_create_update_resolve(page: StatuspageStub) -> None:
    api = client(page)
    posted = api.post(create())
    request = page.seen[-1]
    assert (request.method, request.path) == ("POST", f"/v1/pages/{page.page_id}/incidents")
    assert request.authorization == f"OAuth {page.api_key}"
    assert request.body == {"incident": {
        "name": "Issue affecting Support transcripts", "status": "investigating", "body": BODY,
        "component_ids": [COMPONENT], "components": {COMPONENT: "major_outage"},
        "deliver_notifications": True}}
    assert posted.status == "investigating"
    assert posted.shortlink.startswith("https://stspg.io/")
    incident = page.incidents[posted.incident_id]
    assert incident["impact"] == "critical"
    assert incident["incident_updates"][0]["body"] == BODY

    api.post(StatusPost("update", "", "monitoring", "The fix is live.",
                        {COMPONENT: "operational"}, posted.incident_id))
    request = page.seen[-1]
    assert (request.method, request.path) == (
        "PATCH", f"/v1/pages/{page.page_id}/incidents/{posted.incident_id}")
    assert "name" not in request.body["incident"]
    resolved = api.post(StatusPost("resolve", "", "resolved", "Resolved.", {},
                                   posted.incident_id))
    assert resolved.status == "resolved"
    assert page.incidents[posted.incident_id]["resolved_at"]
    assert [u["status"] for u in page.incidents[posted.incident_id]["incident_updates"]] == [
        "resolved", "monitoring", "investigating"]


def test_refusals_are_the_apis_words_and_never_the_key(page: StatuspageStub,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_STATUSPAGE_KEY", "0e5c1a7f-wrong-key-d1f2")
    with pytest.raises(AdapterError) as caught:
        client(page).post(create())
    assert str(caught.value) == "status page create: HTTP 401: Could not authenticate"
    monkeypatch.setenv("WARROOM_STATUSPAGE_KEY", page.api_key)
    with pytest.raises(AdapterError, match="HTTP 422: Component nope not found"):
        client(page).post(StatusPost("create", "x", "identified", BODY, {"nope": "major_outage"}))
    page.rate_limited = True
    with pytest.raises(AdapterError, match="HTTP 420: Rate limit exceeded"):
        client(page).post(create())
    page.rate_limited = False
    with pytest.raises(AdapterError, match="HTTP 404"):
        client(page).post(StatusPost("update", "", "identified", BODY, {}, "nosuchincident"))
    monkeypatch.delenv("WARROOM_STATUSPAGE_KEY")
    with pytest.raises(AdapterError, match=r"WARROOM_STATUSPAGE_KEY .*not set"):
        client(page).post(create())
    assert not page.incidents


def test_a_create_whose_answer_is_lost_is_adopted_not_repeated(page: StatuspageStub) -> None:
    page.hang_next = 3.0  # the page makes the incident, its answer never arrives in time
    started = time.monotonic()
    posted = client(page, deadline_s=1.0).post(create())
    assert time.monotonic() - started < 1.0 + 3.0
    assert len(page.incidents) == 1
    assert posted.incident_id in page.incidents
    assert "adopted, not created twice" in posted.detail
    assert [s.method for s in page.seen] == ["POST", "GET"]


def test_a_lost_create_with_nothing_on_the_page_is_a_timeout(page: StatuspageStub) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never answers
    try:
        api = StatuspageClient(api_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
                               page_id=page.page_id, api_key_env="WARROOM_STATUSPAGE_KEY",
                               timeout_s=5.0, deadline_s=0.5)
        with pytest.raises(AdapterTimeout, match=r"no complete answer within 0\.5 s"):
            api.post(create())
    finally:
        listener.close()


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[statuspage]\npage_id = "kctbh9vrtdwd"\napi_key_env = "WARROOM_TEST_NO_PAGE_KEY"\n',
     "statuspage.api_key_env",
     "environment variable WARROOM_TEST_NO_PAGE_KEY is not set or empty"),
    ('[statuspage]\napi_key_env = "WARROOM_TEST_NO_PAGE_KEY"\n', "statuspage.page_id",
     "required key is missing"),
    ('[statuspage]\npage_id = "a/b"\napi_key_env = "K"\n', "statuspage.page_id", ""),
    ('[statuspage]\npage_id = "p"\napi_key_env = "K"\napi_key = "in the file"\n',
     "statuspage.api_key", ""),
])
def test_check_config_refuses_a_bad_statuspage_section(tmp_path: Any, text: str, key: str,
                                                       words: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    config = tmp_path / "warroom.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    done = subprocess.run([sys.executable, "-m", "console.cli", "check-config", str(config)],
                          cwd=repo, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": str(repo), "K": "x"})
    assert done.returncode == 2, done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{config}: {key}: {words}" in done.stderr
