"""Notifiers: tell people in their chat what the console just did (DESIGN.md, `Notifier.send`).

``WebhookNotifier`` posts ``{"text": message}`` — the shape Slack, Mattermost and most chat
webhooks accept — to a URL read from an environment variable at send time (the URL of a chat
webhook is a secret: it never appears in the config file, the timeline or an error).

Every send has a total deadline (``deadline_s``): a webhook that trickles its answer is cut there
and the send fails ("no complete answer within N s"); connections are not kept between sends, so
a fault that ends leaves nothing stuck.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from adapters._common import excerpt, looks_like_html
from adapters._deadline import Deadline
from adapters.base import AdapterError, AdapterTimeout


class WebhookNotifier:
    """A chat webhook; every failure is an :class:`AdapterError` with one line, no URL."""

    def __init__(self, url_env: str, timeout_s: float = 3.0, deadline_s: float = 10.0) -> None:
        self.url_env = url_env
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self._client: Any = None
        self._lock = threading.Lock()

    def _url(self) -> str:
        url = os.environ.get(self.url_env, "").strip()
        if not url:
            raise AdapterError(f"environment variable {self.url_env} (chat webhook URL) is not "
                               "set or empty")
        return url

    def send(self, message: str) -> None:
        import httpx

        url = self._url()
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout_s, follow_redirects=False,
                    limits=httpx.Limits(max_keepalive_connections=0),
                )
            client = self._client
        with Deadline(self.deadline_s) as deadline:
            try:
                response = client.post(
                    url, json={"text": message},
                    timeout=deadline.bound(self.timeout_s),
                    extensions={"trace": deadline.trace},
                )
            except httpx.HTTPError as error:
                if deadline.expired:
                    raise AdapterTimeout(
                        f"chat webhook: no complete answer within {self.deadline_s:g} s"
                    ) from None
                if isinstance(error, httpx.TimeoutException):
                    raise AdapterTimeout(
                        f"chat webhook did not answer within {self.timeout_s:g} s"
                    ) from None
                reason = excerpt(str(error) or type(error).__name__, [url])
                raise AdapterError(f"chat webhook unreachable: {reason}") from None
        if response.status_code >= 300:
            body = excerpt(response.text, [url])
            raise AdapterError(f"chat webhook answered HTTP {response.status_code}: {body}")
        if looks_like_html(response.text):
            # a 200 that is a sign-in page: a proxy took the post, the chat never saw it
            raise AdapterError("chat webhook answered with an HTML page (a login page or a "
                               "proxy?): the message was not delivered")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
