"""A status page: incidents on Atlassian Statuspage (its REST API v1), created, updated, resolved.

The calls (developer.statuspage.io, "Incidents"):

* create: ``POST {api_url}/v1/pages/{page_id}/incidents`` with ``{"incident": {"name", "status",
  "body", "component_ids", "components": {id: component_status}, "deliver_notifications"}}``;
  the answer (201) is the incident: ``id``, ``shortlink``, ``status``, ``incident_updates``...
* update and resolve: ``PATCH {api_url}/v1/pages/{page_id}/incidents/{id}`` with the same
  ``incident`` object (``status = "resolved"`` resolves it);
* ``GET .../incidents/unresolved``: after a create whose answer was lost (a timeout, a reset),
  the open incidents are read and one with the same name is adopted — a retried create would
  put a second incident on the public page.

Statuses: ``investigating``, ``identified``, ``monitoring``, ``resolved``; component statuses:
``operational``, ``degraded_performance``, ``partial_outage``, ``major_outage``.

Auth is ``Authorization: OAuth <key>``, the key read from its environment variable at each call
(and scrubbed from every text, as every secret); TLS verified; every call has a total deadline
(:class:`~adapters._deadline.Deadline`); nothing is retried (a post a person confirmed is sent
once); a refusal is one line with the API's own words (``{"error": ...}``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from adapters._common import clean_text, excerpt
from adapters._deadline import Deadline
from adapters.base import AdapterError, AdapterTimeout

STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage")


@dataclass(frozen=True)
class StatusPost:
    """One post to the status page, exactly as the commander confirmed it."""

    action: str  # create | update | resolve
    name: str  # the incident's title on the page (set at create)
    status: str  # one of STATUSES
    body: str  # the update's text
    components: dict[str, str] = field(default_factory=dict)  # component id -> status
    incident_id: str = ""  # the page's incident (update, resolve)


@dataclass(frozen=True)
class Posted:
    """What the status page answered."""

    incident_id: str
    status: str
    shortlink: str
    detail: str = ""


class StatuspageClient:
    """The Statuspage API for one page."""

    def __init__(self, *, api_url: str, page_id: str, api_key_env: str, timeout_s: float = 5.0,
                 deadline_s: float = 15.0, deliver_notifications: bool = True,
                 ca_file: str | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.page_id = page_id
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self.deliver_notifications = deliver_notifications
        self.ca_file = ca_file

    # --- the calls -------------------------------------------------------------------------------

    def post(self, post: StatusPost) -> Posted:
        """Send ``post``; AdapterError (one line) when the page refused it or did not answer."""
        if post.status not in STATUSES:
            raise AdapterError(f"status page: {post.status!r} is not a status "
                               f"({', '.join(STATUSES)})")
        incident: dict[str, Any] = {"status": post.status, "body": post.body,
                                    "deliver_notifications": self.deliver_notifications}
        if post.components:
            incident["component_ids"] = sorted(post.components)
            incident["components"] = dict(post.components)
        if post.action == "create":
            incident["name"] = post.name
            try:
                answer = self._call("POST", "incidents", {"incident": incident}, "create")
            except AdapterTimeout as error:
                found = self._adopt(post.name)
                if found is None:
                    raise
                return Posted(found.incident_id, found.status, found.shortlink,
                              f"the create's answer was lost ({error}); the page has it: "
                              "adopted, not created twice")
        else:
            if not post.incident_id:
                raise AdapterError("status page: no incident to update (create it first)")
            path = f"incidents/{quote(post.incident_id, safe='')}"
            answer = self._call("PATCH", path, {"incident": incident}, post.action)
        return self._incident(answer, post.action)

    def unresolved(self) -> list[dict[str, Any]]:
        answer = self._call("GET", "incidents/unresolved", None, "unresolved incidents")
        return [item for item in answer if isinstance(item, dict)] \
            if isinstance(answer, list) else []

    def _adopt(self, name: str) -> Posted | None:
        try:
            for item in self.unresolved():
                if item.get("name") == name:
                    return self._incident(item, "create")
        except AdapterError:
            return None
        return None

    # --- HTTP ------------------------------------------------------------------------------------

    def _key(self) -> str:
        key = (os.environ.get(self.api_key_env) or "").strip()
        if not key:
            raise AdapterError(f"environment variable {self.api_key_env} (the status page's API "
                               "key) is not set or empty")
        return key

    def _call(self, method: str, path: str, body: dict[str, Any] | None, what: str) -> Any:
        import httpx

        key = self._key()
        url = f"{self.api_url}/v1/pages/{quote(self.page_id, safe='')}/{path}"
        verify: Any = self.ca_file or True
        with Deadline(self.deadline_s) as deadline, httpx.Client(
                timeout=self.timeout_s, verify=verify, follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0)) as client:
            try:
                response = client.request(
                    method, url, json=body, timeout=deadline.bound(self.timeout_s),
                    headers={"Authorization": f"OAuth {key}", "Accept": "application/json"},
                    extensions={"trace": deadline.trace})
                text = response.text
            except httpx.HTTPError as error:
                if deadline.expired:
                    raise AdapterTimeout(f"status page {what}: no complete answer within "
                                         f"{self.deadline_s:g} s") from None
                if isinstance(error, httpx.TimeoutException):
                    raise AdapterTimeout(f"status page {what}: no answer within "
                                         f"{self.timeout_s:g} s") from None
                reason = excerpt(str(error) or type(error).__name__, [key])
                raise AdapterError(f"status page {what}: unreachable: {reason}") from None
        if response.status_code >= 300:
            raise AdapterError(f"status page {what}: HTTP {response.status_code}: "
                               f"{self._api_words(text, key)}")
        try:
            return response.json()
        except ValueError:
            raise AdapterError(f"status page {what}: HTTP {response.status_code} but not JSON: "
                               f"{excerpt(text, [key], 80)}") from None

    @staticmethod
    def _api_words(text: str, key: str) -> str:
        import json

        try:
            data = json.loads(text)
        except ValueError:
            return excerpt(text, [key], 160) or "(no body)"
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, list):
            error = "; ".join(str(e) for e in error)
        return clean_text(str(error), 160) if error else excerpt(text, [key], 160)

    @staticmethod
    def _incident(answer: Any, what: str) -> Posted:
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise AdapterError(f"status page {what}: the answer is not an incident")
        return Posted(answer["id"], str(answer.get("status") or ""),
                      str(answer.get("shortlink") or ""))


__all__ = ["COMPONENT_STATUSES", "STATUSES", "Posted", "StatusPost", "StatuspageClient"]
