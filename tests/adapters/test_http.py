"""The ``http`` adapters against a real local HTTP server (tests/support/deploy_api.py).

Timeouts are 0.5 s and the retry backoff 0.05 s, so the misbehaving-server cases stay fast; every
"it gave up in time" assertion has a generous but finite bound.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.base import AdapterTimeout, Deployer, DeployError, TrafficController
from adapters.http import HttpDeployer, HttpTraffic, lookup_path, parse_weight
from adapters.settings import HttpSettings
from tests.support.deploy_api import Canned, DeployApi

CONTEXT = {"service": "payments", "version": "v1.5.0", "target": "v1.4.1", "incident": "INC-7"}
SVC = "/api/services/payments"
BACKOFF = 0.05


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter honours proxy variables (a bastion may need them); the local server must not."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api() -> Iterator[DeployApi]:
    with DeployApi() as server:
        yield server


def settings(api: DeployApi, **overrides: Any) -> HttpSettings:
    """The documented generic deploy API config, pointed at the test server."""
    actions: dict[str, Any] = {
        "set_weight": {
            "method": "PUT",
            "url": "{base_url}/api/services/{service}/weight",
            "body": {"weight": "{percent}", "incident": "{incident}"},
            "result_path": "canary.weight",
        },
        "current_weight": {
            "url": "{base_url}/api/services/{service}/weight",
            "result_path": "canary.weight",
        },
        "current_version": {
            "url": "{base_url}/api/services/{service}/version",
            "result_path": "items.0.version",
        },
        "preflight": {
            "url": "{base_url}/api/services/{service}/rollbacks/preflight?target={target}",
        },
        "rollback": {
            "method": "POST",
            "url": "{base_url}/api/services/{service}/rollbacks",
            "body": {"to": "{target}", "reason": "{incident}"},
            "result_path": "operation.id",
        },
    }
    actions.update(overrides.pop("actions", {}))
    data: dict[str, Any] = {
        "kind": "http",
        "base_url": api.base_url,
        "timeout_s": 0.5,
        "retries": 2,
        "actions": {k: v for k, v in actions.items() if v is not None},
    }
    data.update(overrides)
    return HttpSettings.model_validate(data)


def traffic(api: DeployApi, **overrides: Any) -> HttpTraffic:
    return HttpTraffic(settings(api, **overrides), CONTEXT, backoff_s=BACKOFF)


def deployer(api: DeployApi, **overrides: Any) -> HttpDeployer:
    return HttpDeployer(settings(api, **overrides), CONTEXT, backoff_s=BACKOFF)


# --- happy paths -------------------------------------------------------------------------------


def test_adapters_implement_the_protocols(api: DeployApi) -> None:
    assert isinstance(traffic(api), TrafficController)
    assert isinstance(deployer(api), Deployer)


def test_set_and_read_weight(api: DeployApi) -> None:
    controller = traffic(api)
    controller.set_weight(25)
    assert api.weight == 25
    sent = api.requests[-1]
    # '{percent}' is sent as a JSON number; other placeholders are filled as strings
    assert sent.body == {"weight": 25, "incident": "INC-7"}
    assert controller.current_weight() == 25


@pytest.mark.parametrize(
    ("reported", "expected"),
    [(10, 10), (10.0, 10), ("35", 35), (" 50% ", 50), (12.5, 13), ("99.6", 100), (0, 0)],
)
def test_current_weight_parses_numbers(api: DeployApi, reported: object, expected: int) -> None:
    api.weight = reported
    assert traffic(api).current_weight() == expected


@pytest.mark.parametrize("reported", ["ten", 101, -1, True, None, [], "NaN"])
def test_current_weight_refuses_non_weights(api: DeployApi, reported: object) -> None:
    api.weight = reported
    with pytest.raises(DeployError, match=r"current_weight: GET .* expected a number 0\.\.100"):
        traffic(api).current_weight()


@pytest.mark.parametrize("percent", [-1, 101, True])
def test_set_weight_refuses_out_of_range(api: DeployApi, percent: int) -> None:
    with pytest.raises(DeployError, match=r"0\.\.100"):
        traffic(api).set_weight(percent)
    assert api.requests == []


def test_set_weight_echo_must_match(api: DeployApi) -> None:
    api.script("PUT", f"{SVC}/weight", Canned(200, {"canary": {"weight": 5}}))
    with pytest.raises(DeployError, match="reports weight 5, not 10"):
        traffic(api).set_weight(10)


def test_current_version_and_rollback(api: DeployApi) -> None:
    deploy = deployer(api)
    assert deploy.current_version() == "v1.4.2"
    lines: list[str] = []
    description = deploy.rollback("v1.4.1", lines.append)
    assert description == "op-1 (HTTP 202)"
    assert lines == ["rollback to v1.4.1 accepted: op-1 (HTTP 202)"]
    assert api.requests[-1].body == {"to": "v1.4.1", "reason": "INC-7"}
    assert deploy.current_version() == "v1.4.1"


def test_rollback_without_result_path_reports_the_status(api: DeployApi) -> None:
    deploy = deployer(api, actions={"rollback": {
        "method": "POST", "url": "{base_url}/api/services/{service}/rollbacks",
        "body": {"to": "{target}"},
    }})
    assert deploy.rollback("v1.4.1") == "HTTP 202"


def test_preflight_endpoint_passes_and_fails(api: DeployApi) -> None:
    deploy = deployer(api)
    good = deploy.preflight_rollback("v1.4.1")
    assert good.ok, good
    names = [c.name for c in good.checks]
    assert {"image exists", "migrations reversible", "preflight endpoint",
            "current version readable", "target version known"} <= set(names)

    bad = deploy.preflight_rollback("v0.0.1")
    assert not bad.ok
    failed = {c.name: c.detail for c in bad.checks if not c.ok}
    assert "v0.0.1 is not in the registry" in failed["image exists"]
    # the preflight only reads: nothing was rolled back
    assert api.count("POST", f"{SVC}/rollbacks") == 0


def test_preflight_with_result_path(api: DeployApi) -> None:
    deploy = deployer(api, actions={"preflight": {
        "url": "{base_url}/api/services/{service}/rollbacks/preflight?target={target}",
        "result_path": "ok",
    }})
    assert deploy.preflight_rollback("v1.4.1").ok
    assert not deploy.preflight_rollback("v9").ok


def test_preflight_without_endpoint_is_read_only(api: DeployApi) -> None:
    deploy = deployer(api, actions={"preflight": None})
    result = deploy.preflight_rollback("v1.4.1")
    assert result.ok
    assert "no preflight endpoint is configured" in result.detail
    assert any("no preflight endpoint is configured" in c.detail for c in result.checks)
    assert [r.method for r in api.requests] == ["GET"]

    empty = deploy.preflight_rollback("  ")
    assert not empty.ok


def test_preflight_reports_an_unreadable_version(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", *[Canned(500, "boom")] * 3)
    result = deployer(api, actions={"preflight": None}).preflight_rollback("v1.4.1")
    assert not result.ok
    failed = [c for c in result.checks if not c.ok]
    assert failed[0].name == "current version readable"
    assert "HTTP 500" in failed[0].detail


def test_preflight_endpoint_failure_is_a_failed_check(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/rollbacks/preflight", *[Canned(503, "down")] * 3)
    result = deployer(api).preflight_rollback("v1.4.1")
    assert not result.ok
    assert any("HTTP 503" in c.detail for c in result.checks if c.name == "preflight endpoint")


def test_path_values_are_url_encoded(api: DeployApi) -> None:
    deploy = HttpDeployer(settings(api), {**CONTEXT, "service": "pay/ments?x=1"}, backoff_s=BACKOFF)
    with pytest.raises(DeployError, match="HTTP 404"):
        deploy.current_version()
    assert api.requests[-1].raw_path == "/api/services/pay%2Fments%3Fx%3D1/version"


# --- failures ----------------------------------------------------------------------------------


def test_500_is_surfaced_with_status_and_short_clean_body(api: DeployApi) -> None:
    body = "\x1b[31mdatabase exploded\x1b[0m\r\n" + "x" * 1000
    api.script("POST", f"{SVC}/rollbacks", Canned(500, body))
    with pytest.raises(DeployError) as caught:
        deployer(api).rollback("v1.4.1")
    message = str(caught.value)
    assert message.startswith(f"rollback: POST {api.base_url}{SVC}/rollbacks -> HTTP 500: ")
    assert "database exploded" in message
    assert "\x1b" not in message and "\n" not in message and "\r" not in message
    excerpt = message.split("HTTP 500: ", 1)[1]
    assert len(excerpt) <= 200


def test_hang_on_a_write_times_out_once_and_says_the_outcome_is_unknown(api: DeployApi) -> None:
    api.script("POST", f"{SVC}/rollbacks", Canned(202, {"operation": {"id": "late"}}, delay_s=5))
    started = time.monotonic()
    with pytest.raises(AdapterTimeout) as caught:
        deployer(api).rollback("v1.4.1")
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed
    assert "no answer within 0.5 s" in str(caught.value)
    assert "may have been applied" in str(caught.value)
    assert api.count("POST", f"{SVC}/rollbacks") == 1  # never retried


def test_hang_on_a_read_is_retried_a_bounded_number_of_times(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", *[Canned(200, {}, delay_s=5)] * 3)
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match=r"current_version: GET .* \(after 2 attempts\)"):
        deployer(api, retries=1).current_version()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # 2 × 0.5 s + backoff, with slack
    assert api.count("GET", f"{SVC}/version") == 2


def test_get_is_retried_then_succeeds(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", Canned(503, "busy"), Canned(502, "bad gateway"))
    assert deployer(api).current_version() == "v1.4.2"
    assert api.count("GET", f"{SVC}/version") == 3


def test_get_gives_up_after_the_configured_retries(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", *[Canned(503, "busy")] * 5)
    with pytest.raises(DeployError, match=r"HTTP 503 \(after 3 attempts\): busy"):
        deployer(api).current_version()
    assert api.count("GET", f"{SVC}/version") == 3


def test_client_errors_are_not_retried(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", Canned(404, {"error": "no such service"}))
    with pytest.raises(DeployError, match="HTTP 404"):
        deployer(api).current_version()
    assert api.count("GET", f"{SVC}/version") == 1


def test_non_idempotent_post_is_not_retried(api: DeployApi) -> None:
    api.script("POST", f"{SVC}/rollbacks", Canned(503, "try later"))
    with pytest.raises(DeployError, match="HTTP 503: try later"):
        deployer(api).rollback("v1.4.1")
    assert api.count("POST", f"{SVC}/rollbacks") == 1
    assert api.version == "v1.4.2"


def test_write_with_idempotency_key_is_retried_with_the_same_key(api: DeployApi) -> None:
    overrides = {
        "headers": {"Idempotency-Key": "{idempotency_key}"},
    }
    api.script("PUT", f"{SVC}/weight", Canned(503, "busy"), Canned(500, "oops"))
    controller = traffic(api, **overrides)
    controller.set_weight(10)
    assert api.weight == 10
    keys = api.idempotency_keys[f"{SVC}/weight"]
    assert len(keys) == 3 and len(set(keys)) == 1
    controller.set_weight(50)  # a new call gets a new key
    assert keys[-1] != keys[0]


def test_key_in_the_body_makes_a_write_retryable(api: DeployApi) -> None:
    overrides = {"actions": {"set_weight": {
        "method": "PUT", "url": "{base_url}/api/services/{service}/weight",
        "body": {"weight": "{percent}", "idempotency_key": "{idempotency_key}"},
    }}}
    api.script("PUT", f"{SVC}/weight", Canned(503, "busy"))
    traffic(api, **overrides).set_weight(5)
    assert api.count("PUT", f"{SVC}/weight") == 2


def test_a_rollback_with_a_key_is_still_sent_once(api: DeployApi) -> None:
    """The console asks the deploy system (by the key) before it ever sends a rollback again:
    the adapter never resends it blind, key or not."""
    deploy = deployer(api, actions={"rollback": {
        "method": "POST", "url": "{base_url}/api/services/{service}/rollbacks",
        "body": {"to": "{target}", "idempotency_key": "{idempotency_key}"},
        "result_path": "operation.id",
    }})
    api.script("POST", f"{SVC}/rollbacks", Canned(503, "busy"))
    with pytest.raises(DeployError, match="HTTP 503"):
        deploy.rollback("v1.4.1", idempotency_key="warroom-INC-7-42-abc")
    assert api.count("POST", f"{SVC}/rollbacks") == 1


def test_write_marked_idempotent_is_retried(api: DeployApi) -> None:
    overrides = {"actions": {"set_weight": {
        "method": "PUT", "url": "{base_url}/api/services/{service}/weight",
        "body": {"weight": "{percent}"}, "idempotent": True,
    }}}
    api.script("PUT", f"{SVC}/weight", Canned(503, "busy"))
    traffic(api, **overrides).set_weight(5)
    assert api.count("PUT", f"{SVC}/weight") == 2


def test_get_marked_not_idempotent_is_not_retried(api: DeployApi) -> None:
    overrides = {"actions": {"current_version": {
        "url": "{base_url}/api/services/{service}/version",
        "result_path": "items.0.version", "idempotent": False,
    }}}
    api.script("GET", f"{SVC}/version", Canned(503, "busy"))
    with pytest.raises(DeployError):
        deployer(api, **overrides).current_version()
    assert api.count("GET", f"{SVC}/version") == 1


def test_wrong_version_is_reported_as_read(api: DeployApi) -> None:
    api.wrong_version = "v9.9.9"
    deploy = deployer(api)
    deploy.rollback("v1.4.1")
    # the adapter reports what the system says; the console sees it is not the target
    assert deploy.current_version() == "v9.9.9"


def test_rollback_that_never_completes(api: DeployApi) -> None:
    api.rollback_completes = False
    deploy = deployer(api)
    assert deploy.rollback("v1.4.1").startswith("op-1")
    assert deploy.current_version() == "v1.4.2"


def test_missing_env_secret_names_the_variable_and_sends_nothing(
    api: DeployApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WARROOM_TEST_DEPLOY_TOKEN", raising=False)
    deploy = deployer(api, headers={
        "Authorization": {"env": "WARROOM_TEST_DEPLOY_TOKEN", "format": "Bearer {}"},
    })
    with pytest.raises(DeployError, match="WARROOM_TEST_DEPLOY_TOKEN is not set"):
        deploy.current_version()
    assert api.requests == []


def test_secret_from_env_is_sent(api: DeployApi, monkeypatch: pytest.MonkeyPatch) -> None:
    api.token = "correct-horse-battery"
    monkeypatch.setenv("WARROOM_TEST_DEPLOY_TOKEN", "correct-horse-battery")
    deploy = deployer(api, headers={
        "Authorization": {"env": "WARROOM_TEST_DEPLOY_TOKEN", "format": "Bearer {}"},
        "X-Incident": "{incident}",
    })
    assert deploy.current_version() == "v1.4.2"
    assert api.requests[-1].headers["x-incident"] == "INC-7"


def test_secret_never_appears_in_error_messages(
    api: DeployApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.token = "the-right-one"
    monkeypatch.setenv("WARROOM_TEST_DEPLOY_TOKEN", "s3cr3t-but-wrong")
    deploy = deployer(api, headers={
        "Authorization": {"env": "WARROOM_TEST_DEPLOY_TOKEN", "format": "Bearer {}"},
    })
    with pytest.raises(DeployError) as caught:
        deploy.current_version()
    message = str(caught.value)
    assert "HTTP 401" in message
    assert "s3cr3t-but-wrong" not in message  # the server echoed it; the adapter scrubbed it
    assert "***" in message

    result = deploy.preflight_rollback("v1.4.1")
    assert "s3cr3t-but-wrong" not in repr(result)


def test_query_string_tokens_stay_out_of_messages(api: DeployApi) -> None:
    deploy = deployer(api, actions={"current_version": {
        "url": "{base_url}/api/services/{service}/version?access_token=abc123",
        "result_path": "nope",
    }})
    with pytest.raises(DeployError) as caught:
        deploy.current_version()
    assert "abc123" not in str(caught.value)
    assert f"GET {api.base_url}{SVC}/version ->" in str(caught.value)


def test_missing_result_path_is_explained(api: DeployApi) -> None:
    deploy = deployer(api, actions={"current_version": {
        "url": "{base_url}/api/services/{service}/version", "result_path": "status.build.tag",
    }})
    with pytest.raises(DeployError) as caught:
        deploy.current_version()
    message = str(caught.value)
    assert "result_path 'status.build.tag' is missing" in message
    assert "no field 'build' at status" in message


def test_list_index_out_of_range_is_explained(api: DeployApi) -> None:
    deploy = deployer(api, actions={"current_version": {
        "url": "{base_url}/api/services/{service}/version", "result_path": "items.3.version",
    }})
    with pytest.raises(DeployError, match="items has 1 items; no index 3"):
        deploy.current_version()


def test_non_json_body_is_explained(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", Canned(200, "<html>proxy login</html>"))
    with pytest.raises(DeployError, match="HTTP 200, but the body is an HTML page, not JSON "
                       r"\(a login page or a proxy\?\): <html>proxy login"):
        deployer(api).current_version()
    api.script("GET", f"{SVC}/version", Canned(200, "version: v1"))
    with pytest.raises(DeployError, match="HTTP 200, but the body is not JSON: version: v1"):
        deployer(api).current_version()


def test_object_where_a_version_was_expected(api: DeployApi) -> None:
    deploy = deployer(api, actions={"current_version": {
        "url": "{base_url}/api/services/{service}/version", "result_path": "items.0",
    }})
    with pytest.raises(DeployError, match="expected a version string, got an object"):
        deploy.current_version()


def test_plain_text_version_without_result_path(api: DeployApi) -> None:
    api.script("GET", f"{SVC}/version", Canned(200, "v1.4.2\n"))
    deploy = deployer(api, actions={"current_version": {
        "url": "{base_url}/api/services/{service}/version",
    }})
    assert deploy.current_version() == "v1.4.2"


def test_missing_context_value_is_refused_before_sending(api: DeployApi) -> None:
    deploy = HttpDeployer(settings(api), {"service": "payments"}, backoff_s=BACKOFF)
    with pytest.raises(DeployError, match=r"no value for \{incident\}.*nothing was sent"):
        deploy.rollback("v1.4.1")
    assert api.requests == []


def test_unknown_context_value_fails_only_where_used(api: DeployApi) -> None:
    deploy = HttpDeployer(settings(api), {**CONTEXT, "version": None}, backoff_s=BACKOFF)
    assert deploy.current_version() == "v1.4.2"  # does not use {version}
    bare = HttpDeployer(settings(api), {**CONTEXT, "incident": ""}, backoff_s=BACKOFF)
    with pytest.raises(DeployError, match=r"no value for \{incident\}"):
        bare.rollback("v1.4.1")


def test_unknown_context_key_is_a_programming_error(api: DeployApi) -> None:
    with pytest.raises(ValueError, match="unknown context key 'services'"):
        HttpDeployer(settings(api), {"services": "payments"})


def test_connection_refused_is_a_deploy_error(api: DeployApi) -> None:
    deploy = deployer(api, base_url="http://127.0.0.1:9", retries=0)
    with pytest.raises(DeployError, match=r"current_version: GET http://127\.0\.0\.1:9/"):
        deploy.current_version()


def test_base_url_without_scheme_is_refused_with_the_config(api: DeployApi) -> None:
    with pytest.raises(ValidationError, match="must be an http:// or https:// URL"):
        deployer(api, base_url="deploy.internal.example.com", retries=0)


def test_importing_the_module_does_not_import_httpx() -> None:
    code = "import sys, adapters.http; assert 'httpx' not in sys.modules, 'httpx imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


# --- helpers -----------------------------------------------------------------------------------


def test_lookup_path_walks_objects_and_lists() -> None:
    data = {"items": [{"version": "a"}, {"version": "b"}], "n": 1}
    assert lookup_path(data, "items.1.version") == "b"
    assert lookup_path(data, "items.-1.version") == "b"
    with pytest.raises(LookupError, match="is a number"):
        lookup_path(data, "n.x")


def test_parse_weight_rounds_half_up() -> None:
    assert parse_weight(0.5) == 1
    assert parse_weight("100") == 100


def _repo_root() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
