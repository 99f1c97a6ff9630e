"""The text helpers every adapter quotes errors with: no secret survives, wherever it falls."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adapters._common import EXCERPT_CHARS, excerpt
from adapters.base import DeployError
from adapters.command import CommandDeployer
from adapters.settings import CommandAction, CommandSettings, SecretFromEnv

SECRET = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.mark.parametrize("before", range(EXCERPT_CHARS - 60, EXCERPT_CHARS + 10))
def test_a_secret_across_the_cut_leaves_no_piece_showing(before: int) -> None:
    text = "x" * before + " Bearer " + SECRET + " more words after it"
    shown = excerpt(text, [SECRET])
    assert len(shown) <= EXCERPT_CHARS
    for size in range(6, len(SECRET) + 1):  # no 6-character piece of it either
        assert all(SECRET[i:i + size] not in shown for i in range(len(SECRET) - size + 1))


def test_a_command_that_prints_its_token_near_the_cut_does_not_show_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "leaky"
    script.write_text(f"#!{sys.executable}\nimport os, sys\n"
                      "sys.stderr.write('e' * 150 + ' auth failed for token ' + "
                      "os.environ['DEPLOY_TOKEN'] + ' (401)\\n')\nsys.exit(1)\n")
    script.chmod(0o755)
    monkeypatch.setenv("WARROOM_TEST_DEPLOY_TOKEN", SECRET)
    settings = CommandSettings(
        env={"DEPLOY_TOKEN": SecretFromEnv(env="WARROOM_TEST_DEPLOY_TOKEN")},
        actions={"current_version": CommandAction(argv=[str(script)]),
                 "rollback": CommandAction(argv=[str(script)])})
    deployer = CommandDeployer(settings, {"service": "svc", "version": "v2", "target": "v1",
                                          "incident": "INC-1"})
    with pytest.raises(DeployError) as caught:
        deployer.current_version()
    message = str(caught.value)
    assert "exited 1" in message
    assert SECRET[:8] not in message and SECRET[-8:] not in message
