"""What the console posts to the status page: the comms draft's update, as the page takes it.

The text is the status page update of :mod:`console.export.comms` (seed 001's template, filled
from the record); the status follows the record (investigating → identified → monitoring →
resolved, :class:`~console.export.comms.StatusPageDraft`); the service's component on the page
(``[statuspage] components``) follows the status: an outage by priority while the issue is
investigated or identified (P0 major, P1 partial, P2/P3 degraded performance), operational once
the fix is live or the issue resolved. The commander edits the text, sees exactly what will be
posted, and confirms; a text that still has a ``[bracketed blank]`` of the draft is never posted.
"""

from __future__ import annotations

import re

from adapters.statuspage import StatusPost
from console.config import StatuspageSettings
from console.export.comms import StatusPageDraft
from console.state import IncidentState

#: A blank of the drafts left for a person to fill: ``[specific issue]``, ``[Company]``...
BLANK = re.compile(r"\[[^\[\]\n]{2,80}\]")
_OUTAGE = {"P0": "major_outage", "P1": "partial_outage", "P2": "degraded_performance",
           "P3": "degraded_performance"}


def component_status(status: str, priority: str) -> str:
    """The component's status on the page while the incident has ``status``."""
    if status in ("monitoring", "resolved"):
        return "operational"
    return _OUTAGE.get(priority, "partial_outage")


def next_post(state: IncidentState, draft: StatusPageDraft, settings: StatuspageSettings,
              body: str | None = None) -> StatusPost:
    """The post that brings the page to what the record shows: the first one creates the
    page's incident, later ones update it, the one that says resolved resolves it."""
    if not state.statuspage_incident:
        action = "create"
    else:
        action = "resolve" if draft.status == "resolved" else "update"
    component = settings.components.get(state.service)
    components = ({component: component_status(draft.status, state.priority)}
                  if component else {})
    return StatusPost(action, draft.name, draft.status, (body if body is not None
                                                         else draft.body).strip(),
                      components, state.statuspage_incident)


def blanks(text: str) -> list[str]:
    """The draft's blanks still in ``text``."""
    return BLANK.findall(text)


def preview(post: StatusPost) -> list[str]:
    """The exact post, line by line, for the commander's confirmation."""
    where = {"create": "a NEW incident on the status page",
             "update": f"an update of the page's incident {post.incident_id}",
             "resolve": f"RESOLVES the page's incident {post.incident_id}"}[post.action]
    lines = [f"This posts {where}:", "", f"Title:      {post.name}",
             f"Status:     {post.status}"]
    lines += [f"Component:  {cid} → {status}" for cid, status in post.components.items()]
    lines += ["", "Text, exactly as it will appear:", ""]
    lines += post.body.splitlines() or ["(empty)"]
    return lines


__all__ = ["BLANK", "blanks", "component_status", "next_post", "preview"]
