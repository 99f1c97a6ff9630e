"""Notifiers: tell people in their chat what the console just did (DESIGN.md, `Notifier.send`).

``WebhookNotifier`` posts ``{"text": message}`` — the shape Slack, Mattermost and most chat
webhooks accept — to a URL read from an environment variable at send time (the URL of a chat
webhook is a secret: it never appears in the config file, the timeline or an error).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from adapters._common import excerpt
from adapters.base import AdapterError, AdapterTimeout


class WebhookNotifier:
    """A chat webhook; every failure is an :class:`AdapterError` with one line, no URL."""

    def __init__(self, url_env: str, timeout_s: float = 3.0) -> None:
        self.url_env = url_env
        self.timeout_s = timeout_s
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
                self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)
            client = self._client
        try:
            response = client.post(url, json={"text": message})
        except httpx.TimeoutException:
            raise AdapterTimeout(f"chat webhook did not answer within {self.timeout_s:g} s") \
                from None
        except httpx.HTTPError as error:
            reason = excerpt(str(error) or type(error).__name__, [url])
            raise AdapterError(f"chat webhook unreachable: {reason}") from None
        if response.status_code >= 300:
            body = excerpt(response.text, [url])
            raise AdapterError(f"chat webhook answered HTTP {response.status_code}: {body}")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
