"""README.md stays true: its TOML examples load, and the commands it shows exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.cli import build_parser
from console.config import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_shows_the_two_commands_first() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=[f"toml-{n}" for n in range(len(TOML_BLOCKS))])
def test_readme_toml_examples_load(block: str) -> None:
    parse_config(block, README)


def test_readme_has_toml_examples() -> None:
    assert len(TOML_BLOCKS) >= 2


def test_every_command_in_the_readme_exists() -> None:
    # Fence by fence (an opening fence starts a line, and so does its closing one), so a block
    # in another language (toml, mermaid, text) never pairs its closing fence with the next.
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", README.read_text(encoding="utf-8"),
                        re.S | re.M)
    code = "\n".join(body for language, body in blocks if language in ("", "sh"))
    shown = set(re.findall(r"^warroom ([a-z-]+)", code, re.M))
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    known = set(actions[0].choices)  # type: ignore[arg-type]
    assert shown and shown <= known, shown - known
