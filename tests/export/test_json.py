"""The JSON export: the names and types scripts rely on (DESIGN.md), and every event with its
hash."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from console.export import render
from console.export.jsonexport import render_json
from console.model import ROLLBACK_STATUSES, Kind
from console.state import fold, state_json
from tests.export.fixtures import (
    HOSTILE_NOTE,
    TITLE,
    build_not_verified,
    build_promoted,
    build_verified,
)

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HASH = re.compile(r"^[0-9a-f]{64}$")


def load(text: str) -> dict[str, Any]:
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


def test_shape_and_formatting(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    text = render_json(built.events)
    assert text.endswith("}\n")
    assert text.split("\n")[1] == '  "incident": {'  # indent 2
    assert "≤" in text and "\\u2264" not in text  # UTF-8 kept as is
    document = load(text)
    assert list(document) == ["incident", "state", "head", "events"]
    assert render("json", built.events) == text
    last = document["events"][-1]  # issue 12: the export carries the head it was made from
    assert document["head"] == {"event_id": last["id"], "hash": last["hash"],
                                "algorithm": "sha256",
                                "text": f"head #{last['id']} sha256:{last['hash']}"}


def test_incident(tmp_path: Path) -> None:
    document = load(render_json(build_verified(tmp_path).events))
    assert document["incident"] == {
        "id": "INC-1",
        "title": TITLE,
        "priority": "P0",
        "category": "security",
        "service": "redaction-api",
        "from_version": "v1.4.2",
        "to_version": "v1.4.3",
        "commander": "sam",
    }


def test_commander_and_target_follow_the_record(tmp_path: Path) -> None:
    handed_over = load(render_json(build_not_verified(tmp_path / "n").events))
    assert handed_over["incident"]["commander"] == "lee"
    promoted = load(render_json(build_promoted(tmp_path / "p").events))
    assert promoted["incident"]["to_version"] == "v1.4.4"


@pytest.mark.parametrize(("builder", "status", "percent"), [
    (build_verified, "verified", 0),
    (build_not_verified, "not_verified", 0),
    (build_promoted, "preflight_passed", 100),
])
def test_state_contract(tmp_path: Path, builder: Any, status: str, percent: int) -> None:
    built = builder(tmp_path)
    state = load(render_json(built.events))["state"]
    assert state == json.loads(json.dumps(state_json(fold(built.events))))
    assert type(state["canary_percent"]) is int and state["canary_percent"] == percent
    assert state["rollback_status"] in ROLLBACK_STATUSES
    assert state["rollback_status"] == status
    assert isinstance(state["approvals"], list) and state["approvals"]
    for approval in state["approvals"]:
        assert isinstance(approval["role"], str)
        assert isinstance(approval["user"], str)
        assert approval["kind"] in ("direct", "relayed", "waived", "simulated")
        assert isinstance(approval["stale"], bool)
    assert [g["name"] for g in state["guardrails"]] == ["error-rate", "p95-latency"]
    for guardrail in state["guardrails"]:
        assert guardrail["status"] in ("healthy", "breach", "insufficient", "cant_evaluate",
                                       "unknown")


def test_approval_kinds_and_staleness(tmp_path: Path) -> None:
    approvals = load(render_json(build_promoted(tmp_path).events))["state"]["approvals"]
    assert [(a["role"], a["user"], a["kind"], a["stale"]) for a in approvals] == [
        ("security-lead", "priya", "direct", True),
        ("platform-lead", "marco", "relayed", True),
        ("security-lead", "priya", "direct", False),
        ("platform-lead", "sam", "waived", False),
    ]


def test_every_event_with_its_hash(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    events = load(render_json(built.events))["events"]
    assert len(events) == len(built.events)
    previous = "0" * 64
    for exported, stored in zip(events, built.events, strict=True):
        for key, kind in (("id", int), ("ts", str), ("kind", str), ("actor", str),
                          ("payload", dict), ("hash", str)):
            assert isinstance(exported[key], kind), key
        assert exported["id"] == stored.id
        assert exported["hash"] == stored.hash and HASH.match(exported["hash"])
        assert exported["prev_hash"] == previous
        assert TS.match(exported["ts"])
        assert exported["kind"] == stored.kind
        assert exported["payload"] == stored.payload
        previous = exported["hash"]
    notes = [e for e in events if e["kind"] == Kind.NOTE]
    assert notes[0]["payload"]["text"] == HOSTILE_NOTE  # user text is data, kept exactly


def test_non_finite_numbers_become_null(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    odd = dataclasses.replace(built.events[-1], payload={"value": float("nan"),
                                                         "list": [float("inf"), 1.5]})
    document = load(render_json([*built.events[:-1], odd]))
    assert document["events"][-1]["payload"] == {"value": None, "list": [None, 1.5]}


def test_samples_on_request_and_the_new_state_names(tmp_path: Path) -> None:
    from console.cli import main

    built = build_verified(tmp_path)
    out = tmp_path / "with-samples.json"
    assert main(["export", "1", "--format", "json", "--samples", "-o", str(out), "--db",
                 str(built.path)]) == 0
    document = load(out.read_text(encoding="utf-8"))
    assert list(document) == ["incident", "state", "head", "events", "samples"]
    canary = document["samples"]["error-rate/canary"]
    assert canary[0] == ["2026-03-12T22:11:10.000Z", 0.004] and len(canary) == 54
    assert sorted(document["samples"]) == sorted(built.samples)
    plain = load(render_json(built.events))
    assert "samples" not in plain  # only when asked: the contract's shape is unchanged
    state = plain["state"]
    assert state["change_is_fix"] is True and state["harm_back"] is False  # mitigated since
    assert [m["milestone"] for m in state["milestones"]] == ["detected", "impact-started",
                                                              "mitigated"]
    assert state["roles"] == [{"role": "scribe", "user": "lee"}, {"role": "comms", "user": "ana"}]
    assert {"kind": "ticket", "url": "https://tickets.example/SUP-4411"} in state["links"]
    assert len(state["highlights"]) == 2
