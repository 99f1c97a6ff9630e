"""Configuration: the example loads, good files load, every bad file exits 2 naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import Config, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "config"


def test_example_config_loads_and_matches_the_seeds() -> None:
    config, path = load_config(REPO / "config.example.toml")
    assert path == REPO / "config.example.toml"
    assert config.required_roles("security") == ["security-lead", "platform-lead"]
    assert [config.priorities.hours(p) for p in ("P0", "P1", "P2", "P3")] == [2, 4, 24, 48]
    assert [s.percent for s in config.canary.plans["compressed"].stages] == [1, 10, 50, 100]
    assert config.metrics.kind == "prometheus"
    assert {g.name for g in config.guardrails} == {"error-ratio", "error-vs-baseline",
                                                  "p99-latency"}
    assert set(config.bypass) == {"eval-gate", "canary", "change-window", "freeze",
                                  "multi-change"}
    assert len(config.rollback.compatibility_checklist) == 6


def test_defaults_without_a_file_use_the_simulator() -> None:
    config = Config()
    assert config.metrics.kind == "sim" and config.deploy.kind == "sim"
    assert config.canary.default_plan == "compressed"


def test_good_fixture_loads() -> None:
    config, _ = load_config(FIXTURES / "good.toml")
    assert config.roster["security-lead"] == ["priya"]
    # a partial [approvals] keeps the other categories' defaults
    assert config.required_roles("incident") == ["senior-engineer", "platform-lead"]


@pytest.mark.parametrize(
    ("name", "key", "words"),
    [
        ("bad_plan_missing.toml", "canary.default_plan", "'slow' is not in plans"),
        ("bad_roster_type.toml", "roster.security-lead", "valid list"),
        ("bad_metrics_no_url.toml", "metrics.url", "required key is missing"),
        ("bad_priority.toml", "priorities.P0", "greater than 0"),
        ("bad_unknown_key.toml", "store.password", "unknown key"),
        ("bad_stages.toml", "canary.plans.compressed.stages[1].percent", "must rise"),
        ("bad_toml.toml", "roster", "not valid TOML"),
        ("bad_placeholder.toml", "deploy.actions.rollback.url", "unknown placeholder {nope}"),
        ("bad_bypass_element.toml", "bypass.coffee", "unknown element 'coffee'"),
        ("bad_guardrail_no_limit.toml", "guardrails[0].max", "give max"),
        ("bad_metrics_port.toml", "metrics.url", "not a usable port"),
    ],
)
def test_bad_config_names_file_and_key(name: str, key: str, words: str) -> None:
    path = FIXTURES / name
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert caught.value.key == key
    assert words in message


def test_secret_values_are_not_accepted_inline() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[metrics]\nkind = "prometheus"\nurl = "http://127.0.0.1:9090"\n'
                     'bearer_token = "s3cret"\n')
    assert caught.value.key == "metrics.bearer_token"
    assert "s3cret" not in str(caught.value)


def test_config_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None)[1] is None
    (tmp_path / "warroom.toml").write_text('[emergency_rate]\nmax_per_30_days = 4\n')
    config, path = load_config(None)
    assert path == tmp_path / "warroom.toml" and config.emergency_rate.max_per_30_days == 4
    other = tmp_path / "other.toml"
    other.write_text('[emergency_rate]\nmax_per_30_days = 9\n')
    monkeypatch.setenv("WARROOM_CONFIG", str(other))
    assert load_config(None)[0].emergency_rate.max_per_30_days == 9
    assert load_config(tmp_path / "warroom.toml")[0].emergency_rate.max_per_30_days == 4
