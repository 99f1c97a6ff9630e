"""Chat and paging targets through apprise: Slack, Microsoft Teams, Mattermost, Discord, email,
PagerDuty and the ~100 others apprise speaks (``[notify] urls_env``).

apprise (a well-kept library) knows each service's payload, auth and error shape; warroom keeps
what it adds: the URL — a secret — is read from an environment variable at send time and never
shown (errors name the variable and the URL's scheme only, scrubbed like every secret); every
send has a total deadline (``deadline_s``, the one :class:`~adapters._deadline.Deadline` every
adapter uses: apprise's HTTP connections are cut when it passes, and a target that is not HTTP,
email, is given up at it); a failure is one line that says what the service answered.

:class:`ChatWebhook` keeps ``[notify] webhook_url_env`` working as it always did: a URL apprise
recognises as a service's own (a Slack, Discord, Teams... webhook URL) goes through apprise, in
that service's shape; any other URL gets warroom's ``{"text": ...}`` post
(:class:`adapters.notify.WebhookNotifier`), which Slack-compatible webhooks accept.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from adapters._common import clean_text
from adapters._deadline import Deadline, guard_urllib3
from adapters.base import AdapterError, AdapterTimeout
from adapters.notify import WebhookNotifier
from adapters.secrets import scrub

#: Extra seconds past the deadline a target that is not HTTP (email) may take to give up.
GRACE_S = 1.0
_LOG_LINE = re.compile(r" - (?:WARNING|ERROR) - (.*)")


def scheme_of(url: str) -> str:
    """The URL's scheme (``slack``, ``mmost``, ``https``...): what may be shown of it."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").isalnum() else "?"


def apprise_knows(url: str) -> bool:
    """Whether apprise has a service for ``url`` (its own scheme, or a service's own web URL)."""
    import apprise

    return apprise.Apprise.instantiate(url) is not None


def _read(url_env: str, what: str) -> str:
    url = (os.environ.get(url_env) or "").strip()
    if not url:
        raise AdapterError(f"environment variable {url_env} ({what}) is not set or empty")
    return url


class AppriseNotifier:
    """One target: the apprise URL in ``$url_env``. A :class:`~adapters.base.Notifier`."""

    def __init__(self, url_env: str, *, timeout_s: float = 3.0, deadline_s: float = 10.0) -> None:
        self.url_env = url_env
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s

    @property
    def target(self) -> str:
        """How the record names this target: the variable (never the URL)."""
        return self.url_env

    def send(self, message: str) -> None:
        self.send_to(_read(self.url_env, "an apprise URL"), message)

    def send_to(self, url: str, message: str) -> None:
        import apprise

        scheme = scheme_of(url)
        where = f"{self.url_env} ({scheme})"
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            raise AdapterError(f"{where}: not a URL apprise knows (slack://, msteams://, "
                               "mmost://, discord://, mailto://, pagerduty://, json://, ...)")
        # apprise's own timeouts for one connect and one read; the deadline bounds the whole
        plugin.socket_connect_timeout = self.timeout_s
        plugin.socket_read_timeout = self.timeout_s
        guard_urllib3()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                with Deadline(self.deadline_s) as deadline:
                    with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
                        outcome["ok"] = plugin.notify(body=message, title="")
                        outcome["log"] = logs.getvalue()
                    outcome["expired"] = deadline.expired
            except Exception as error:  # reported below, in one line
                outcome["error"] = error

        worker = threading.Thread(target=run, name=f"notify-{scheme}", daemon=True)
        worker.start()
        worker.join(self.deadline_s + GRACE_S)
        if worker.is_alive() or outcome.get("expired"):
            raise AdapterTimeout(f"{where}: no complete answer within {self.deadline_s:g} s")
        if "error" in outcome:
            raise AdapterError(self._words(where, f"{type(outcome['error']).__name__}: "
                                                  f"{outcome['error']}", url))
        if not outcome.get("ok"):
            found = _LOG_LINE.findall(str(outcome.get("log") or ""))
            reason = "; ".join(found[-2:]) if found else "apprise reported a failure"
            raise AdapterError(self._words(where, reason, url))

    @staticmethod
    def _words(where: str, reason: str, url: str) -> str:
        # the URL's own pieces (tokens in its path) are secrets even when not registered
        for piece in re.split(r"[/:@?&=#]+", url.partition("://")[2]):
            if len(piece) >= 4:
                reason = reason.replace(piece, "****")
        return f"{where}: {clean_text(scrub(reason), 200)}"

    def close(self) -> None:
        pass


class ChatWebhook:
    """``[notify] webhook_url_env``: a service's own webhook URL through apprise (in its shape),
    any other URL as warroom's ``{"text": ...}`` post, as before."""

    def __init__(self, url_env: str, *, timeout_s: float = 3.0, deadline_s: float = 10.0) -> None:
        self.url_env = url_env
        self.plain = WebhookNotifier(url_env, timeout_s=timeout_s, deadline_s=deadline_s)
        self.apprise = AppriseNotifier(url_env, timeout_s=timeout_s, deadline_s=deadline_s)

    def send(self, message: str) -> None:
        url = _read(self.url_env, "chat webhook URL")
        if url.startswith(("http://", "https://")) and not apprise_knows(url):
            self.plain.send(message)
        else:
            self.apprise.send_to(url, message)

    def close(self) -> None:
        self.plain.close()


__all__ = ["AppriseNotifier", "ChatWebhook", "apprise_knows", "scheme_of"]
