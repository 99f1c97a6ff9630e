"""One write path (console/commands.py): every fact a person or the console decides goes through
one function per command that checks the rules inside the store's write transaction."""

from __future__ import annotations

import ast
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console import commands, policy
from console.config import Config
from console.demo import declare_demo, demo_config, start_simulated_approvers
from console.store import Store

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
CONFIG = demo_config(Config(), "bad")

#: The only modules that append to the store: the write path itself, and the engine, which
#: records what adapters report as the outcome of a command journalled by the write path.
WRITERS = {"console/commands.py", "console/engine.py", "console/store.py"}
APPENDS = {"append", "append_many", "record", "create_incident"}


def test_only_the_write_path_appends() -> None:
    offenders = []
    for path in sorted((REPO / "console").rglob("*.py")) + sorted((REPO / "widgets").rglob("*.py")):
        name = str(path.relative_to(REPO))
        if name in WRITERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in APPENDS
                    and isinstance(node.func.value, ast.Name | ast.Attribute)
                    and "store" in ast.unparse(node.func.value).lower()):
                offenders.append(f"{name}:{node.lineno}: {ast.unparse(node)[:60]}")
    assert not offenders, "writes outside console/commands.py:\n" + "\n".join(offenders)


def test_simulated_approvers_obey_the_approval_rules(tmp_path: Path) -> None:
    """The demo's approvers are people on the roster too: the commander is not one of them,
    even in a demo, and a real incident never gets a simulated approval."""
    with Store(tmp_path / "w.db") as store:
        demo = declare_demo(store, CONFIG, "priya", ts=T0)  # priya commands this demo
        with pytest.raises(policy.Refused, match="commander"):
            commands.simulated_approval(store, CONFIG, demo, user="priya", role="security-lead")
        event = commands.simulated_approval(store, CONFIG, demo, user="marco",
                                            role="platform-lead")
        assert event.actor == "marco (simulated)"
        assert store.state(demo).approvals[-1].kind == "simulated"
        real = commands.declare(store, CONFIG, commander="alice", title="real", priority="P1",
                                category="security", service="svc", from_version="v1",
                                to_version="v2", now=T0).incident_id
        with pytest.raises(policy.Refused, match="not a demo"):
            commands.simulated_approval(store, CONFIG, real, user="priya", role="security-lead")


def test_the_demo_approver_thread_goes_through_the_rules(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store:
        demo = declare_demo(store, CONFIG, "marco", ts=T0)  # marco commands: he cannot approve
        stop = threading.Event()
        thread = start_simulated_approvers(store, CONFIG, demo, store.state(demo), stop,
                                           max_delay_s=0.03)
        assert thread is not None
        thread.join(timeout=30)
        assert not thread.is_alive()
        approvals = store.state(demo).approvals
    assert [(a.role, a.user, a.kind) for a in approvals] == [
        ("security-lead", "priya", "simulated")]


def test_two_approvers_racing_for_one_role_record_one_approval(tmp_path: Path) -> None:
    """The check runs inside the write transaction: of many relayed approvals for one role,
    sent at once from separate connections, exactly one is recorded."""
    path = tmp_path / "w.db"
    config = Config.model_validate({"roster": {"security-lead": [f"p{i}" for i in range(8)],
                                               "platform-lead": ["marco"]}})
    with Store(path) as store:
        incident = commands.declare(store, config, commander="alice", title="race",
                                    priority="P0", category="security", service="svc",
                                    from_version="v1", to_version="v2", now=T0).incident_id
    start = threading.Barrier(8, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def relay(index: int) -> None:
        with Store(path) as own:
            start.wait()
            try:
                commands.relay_approval(own, config, incident, actor="alice",
                                        role="security-lead", relayed_from=f"p{index}",
                                        evidence="bridge call 22:14, Slack #inc")
                outcome = "recorded"
            except policy.Refused:
                outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["recorded"] + ["refused"] * 7
    with Store(path, readonly=True) as reader:
        assert [a.role for a in reader.state(incident).approvals] == ["security-lead"]


@pytest.mark.parametrize("verb", [
    ["note", "1", "   "],
    ["waive", "1", "--role", "security-lead", "--reason", "short"],
    ["target", "1", "--to-version", "v9", "--reason", "nope"],
    ["approve", "1", "--role", "security-lead", "--relayed-from", "priya", "--evidence", "x"],
    ["approve", "1", "--role", "nonexistent-role"],
])
def test_every_cli_write_is_refused_by_the_rules(run_warroom, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                 verb: list[str]) -> None:
    db = str(tmp_path / "w.db")
    declared = run_warroom("declare", "--title", "t", "--priority", "P1", "--category",
                           "security", "--service", "svc", "--from-version", "v1",
                           "--to-version", "v2", "--db", db)
    assert declared.code == 0, declared.err
    result = run_warroom(*verb, "--db", db)
    assert result.code == 2, (result.out, result.err)
    assert len(result.err.strip().splitlines()) == 1
    with Store(db, readonly=True) as reader:
        assert reader.state(1).event_count == 1  # nothing but the declaration was written
