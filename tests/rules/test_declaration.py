"""Declaration rules at their edges: bypass reasons, names, versions, scenarios, the rate bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console import policy
from console.config import Config
from console.events import Bypass
from console.policy import Refused
from console.store import Store, recent_window

from .support import CONFIG

ELEMENTS = "eval-gate, canary, change-window, freeze, multi-change"


def declare(config: Config = CONFIG, **overrides: Any) -> dict[str, Any]:
    """The declaration's record as stored (its payload)."""
    args: dict[str, Any] = {
        "title": "PII exposed", "priority": "P0", "category": "security",
        "service": "redaction-api", "from_version": "v1.4.2", "to_version": "v1.4.3",
        "bypass_specs": [], "affects": [], "commander": "alice",
    }
    args.update(overrides)
    return policy.declaration(config, **args).to_payload()


def refusal(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(Refused) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# --- bypass: element, a specific reason (8 characters after trimming), compensation ---------------


def test_bypass_reason_of_exactly_eight_characters_is_specific_enough() -> None:
    assert policy.parse_bypass("canary=12345678", CONFIG) == Bypass(
        element="canary",
        reason="12345678",
        compensation="Compress canary (faster steps) or skip; intensive monitoring at 100%",
        post_gate="Watch every metric at 100% for 15-30 minutes",
    )


@pytest.mark.parametrize("spec", ["canary=1234567", "canary=   1234567   ", "canary=",
                                  "canary=::x"])
def test_bypass_reason_one_short_of_eight_characters_is_refused(spec: str) -> None:
    assert refusal(policy.parse_bypass, spec, CONFIG) == (
        "--bypass canary: give a specific reason (seed 000: each bypass is documented and the "
        "reason is specific)"
    )


def test_bypass_without_equals_names_the_form_and_the_elements() -> None:
    assert refusal(policy.parse_bypass, "canary", CONFIG) == (
        f"--bypass 'canary': expected ELEMENT=REASON (elements: {ELEMENTS})"
    )


@pytest.mark.parametrize("element", ["coffee", "Canary", "canary-", ""])
def test_bypass_of_an_unknown_element_is_refused(element: str) -> None:
    assert refusal(policy.parse_bypass, f"{element}=harm is ongoing", CONFIG) == (
        f"--bypass: unknown element {element!r} (known: {ELEMENTS})"
    )


def test_bypass_element_and_reason_are_trimmed_and_split_at_the_first_separators() -> None:
    record = policy.parse_bypass(" eval-gate =  eval=3h, too slow ::  run eval a::b  ", CONFIG)
    assert record == Bypass(
        element="eval-gate",
        reason="eval=3h, too slow",
        compensation="run eval a::b",
        post_gate="Run the skipped eval against the promoted version",
    )


@pytest.mark.parametrize("spec", ["freeze=release freeze until Monday::",
                                  "freeze=release freeze until Monday::   "])
def test_an_empty_compensation_falls_back_to_the_default(spec: str) -> None:
    record = policy.parse_bypass(spec, CONFIG)
    assert record.compensation == "Document the bypass; senior approval"
    assert record.post_gate == "Record the senior approval with the freeze owner"


def test_configured_compensation_and_post_gate_are_used() -> None:
    config = Config.model_validate({"bypass": {"canary": {
        "justification": "j", "compensation": "our compensation", "post_gate": "our gate"}}})
    record = policy.parse_bypass("canary=harm is ongoing", config)
    assert (record.compensation, record.post_gate) == ("our compensation", "our gate")


def test_the_same_element_bypassed_twice_is_refused() -> None:
    assert refusal(declare, bypass_specs=["canary=harm is ongoing", "eval-gate=eval takes 3h",
                                          "canary=still ongoing now"]) == (
        "--bypass canary is given twice"
    )


def test_every_element_once_is_accepted() -> None:
    specs = [f"{element}=a specific reason" for element in ELEMENTS.split(", ")]
    payload = declare(bypass_specs=specs)
    assert [b["element"] for b in payload["bypasses"]] == ELEMENTS.split(", ")


# --- title, priority, category, service, versions ------------------------------------------------


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
def test_an_empty_title_is_refused(title: str) -> None:
    assert refusal(declare, title=title) == "--title must not be empty"


def test_title_of_200_characters_is_accepted_and_201_refused() -> None:
    assert declare(title="t" * 200)["title"] == "t" * 200
    assert declare(title="  " + "t" * 200 + "  ")["title"] == "t" * 200  # trimmed first
    assert refusal(declare, title="t" * 201) == "--title is longer than 200 characters"


@pytest.mark.parametrize("priority", ["P4", "p0", "P", ""])
def test_unknown_priority_is_refused(priority: str) -> None:
    assert refusal(declare, priority=priority) == (
        f"--priority {priority!r}: expected one of P0, P1, P2, P3"
    )


@pytest.mark.parametrize("category", ["ops", "Security", ""])
def test_unknown_category_is_refused(category: str) -> None:
    assert refusal(declare, category=category) == (
        f"--category {category!r}: expected one of security, regulatory, incident, "
        "customer-blocking"
    )


@pytest.mark.parametrize("service", ["a" * 63, "a", "0-api", "a.b_c-d"])
def test_service_names_accepted(service: str) -> None:
    assert declare(service=service)["service"] == service


@pytest.mark.parametrize("service", ["a" * 64, "", "Redaction", "-api", "api/v1", "api "])
def test_service_names_refused(service: str) -> None:
    assert refusal(declare, service=service) == (
        f"--service {service!r}: lower-case letters, digits, '.', '_' and '-'"
    )


@pytest.mark.parametrize("flag", ["from_version", "to_version"])
def test_version_of_64_characters_is_accepted_and_65_refused(flag: str) -> None:
    assert declare(**{flag: "v" * 64})[flag] == "v" * 64
    assert refusal(declare, **{flag: "v" * 65}) == (
        f"--{flag.replace('_', '-')} {'v' * 65!r}: expected a version like v1.4.3"
    )


@pytest.mark.parametrize("version", ["", ".v1", "v1 ", "v1/2"])
def test_malformed_versions_are_refused(version: str) -> None:
    assert refusal(declare, to_version=version) == (
        f"--to-version {version!r}: expected a version like v1.4.3"
    )


def test_the_same_from_and_to_version_is_refused() -> None:
    assert refusal(declare, from_version="v1.4.3", to_version="v1.4.3") == (
        "--from-version and --to-version are the same: nothing to ship or roll back"
    )


# --- mission-critical scenarios (seed 002) --------------------------------------------------------


def test_scenario_advice_is_empty_without_scenarios_and_names_them_otherwise() -> None:
    assert policy.scenario_advice([]) == ""
    assert policy.scenario_advice(["login", "checkout"]) == (
        "Mission-critical scenario affected (login, checkout): prefer a rollback over a hotfix "
        "when the rollback is compatible (seed 002)"
    )


def test_a_scenario_outside_the_configured_list_is_refused() -> None:
    config = Config.model_validate({"scenarios": {"mission_critical": ["login", "checkout"]}})
    assert refusal(declare, config, affects=["login", "billing"]) == (
        "--affects 'billing' is not a configured mission-critical scenario (known: login, "
        "checkout)"
    )
    payload = declare(config, affects=["checkout"])
    assert payload["affects"] == ["checkout"]
    assert payload["advice"] == policy.scenario_advice(["checkout"])


@pytest.mark.parametrize("scenario", ["", "   "])
def test_an_empty_scenario_is_refused_even_without_a_list(scenario: str) -> None:
    assert refusal(declare, affects=[scenario]) == "--affects must not be empty"


def test_without_a_configured_list_any_named_scenario_is_accepted() -> None:
    assert declare(affects=["anything"])["affects"] == ["anything"]


# --- the plan and the payload ---------------------------------------------------------------------


def test_an_unknown_plan_is_refused() -> None:
    assert refusal(declare, plan_name="slow") == "unknown canary plan 'slow'"


def test_a_named_plan_is_used_and_recorded() -> None:
    config = Config.model_validate({"canary": {"plans": {
        "compressed": {"stages": [{"percent": 100}]},
        "careful": {"stages": [{"percent": 5, "hold_s": 60}, {"percent": 100}]},
    }}})
    payload = declare(config, plan_name="careful")
    assert payload["plan_name"] == "careful"
    assert payload["plan"] == [{"percent": 5, "hold_s": 60.0}, {"percent": 100, "hold_s": 0.0}]
    assert declare(config)["plan_name"] == "compressed"


def test_the_declaration_payload_records_every_rule_it_was_declared_under() -> None:
    payload = declare(bypass_specs=["canary=harm is ongoing"], priority="P1",
                      simulated=True)
    assert payload == {
        "title": "PII exposed",
        "priority": "P1",
        "category": "security",
        "service": "redaction-api",
        "from_version": "v1.4.2",
        "to_version": "v1.4.3",
        "commander": "alice",
        "bypasses": [{
            "element": "canary", "reason": "harm is ongoing",
            "compensation": "Compress canary (faster steps) or skip; intensive monitoring at 100%",
            "post_gate": "Watch every metric at 100% for 15-30 minutes"}],
        "affects": [],
        "advice": "",
        "required_roles": ["security-lead", "platform-lead"],
        "plan_name": "compressed",
        "plan": [{"percent": 1, "hold_s": 300.0}, {"percent": 10, "hold_s": 600.0},
                 {"percent": 50, "hold_s": 600.0}, {"percent": 100, "hold_s": 0.0}],
        "target_hours": 4.0,
        "checklist": list(CONFIG.rollback.compatibility_checklist),
        "guardrails": [
            {"name": "error-ratio", "consecutive": 3, "on_breach": "rollback"},
            {"name": "p99-latency", "consecutive": 2, "on_breach": "hold"},
        ],
        "simulated": True,
    }
    assert declare()["simulated"] is False


@pytest.mark.parametrize(("priority", "hours"), [("P0", 2.0), ("P1", 4.0), ("P2", 24.0),
                                                 ("P3", 48.0)])
def test_priority_targets_from_the_seeds(priority: str, hours: float) -> None:
    assert declare(priority=priority)["target_hours"] == hours


# --- the emergency-rate bar (seed 000, Q3): warn only ABOVE the bar ------------------------------


def test_rate_exactly_at_the_bar_is_not_a_warning_and_one_above_is() -> None:
    assert CONFIG.emergency_rate.max_per_30_days == 1
    assert policy.emergency_rate_warning(CONFIG, 0) is None
    assert policy.emergency_rate_warning(CONFIG, 1) is None
    warning = policy.emergency_rate_warning(CONFIG, 2)
    assert warning is not None and warning.to_payload() == {
        "count": 2,
        "window_days": 30,
        "bar": 1,
        "message": "2 emergencies declared in the last 30 days (bar: 1). True emergencies are "
                   "rare: the bar may be too low, or upstream issues are creating false urgency "
                   "(seed 000, Q3).",
    }


def test_a_bar_of_zero_warns_on_the_first_emergency() -> None:
    config = Config.model_validate({"emergency_rate": {"max_per_30_days": 0}})
    assert policy.emergency_rate_warning(config, 0) is None
    warning = policy.emergency_rate_warning(config, 1)
    assert warning is not None and (warning.bar, warning.count) == (0, 1)


def test_the_30_day_window_counts_a_declaration_exactly_30_days_old(tmp_path: Path) -> None:
    now = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
    since = recent_window(now, policy.RATE_WINDOW_DAYS)
    assert since == now - timedelta(days=30)
    with Store(tmp_path / "w.db") as store:
        store.create_incident("alice", {"title": "older"}, ts=since - timedelta(milliseconds=1))
        store.create_incident("alice", {"title": "at the edge"}, ts=since)
        store.create_incident("alice", {"title": "recent"}, ts=now)
        assert [e.payload["title"] for e in store.declarations_since(since)] == [
            "at the edge", "recent"]
