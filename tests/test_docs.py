"""Documentation stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from landuse.core.config import ScenarioConfig
from landuse.core.config_doc import iter_keys, render

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_lists_every_key() -> None:
    text = (ROOT / "docs" / "config.md").read_text()
    missing = [path for path, *_ in iter_keys(ScenarioConfig) if f"`{path}`" not in text]
    assert not missing, f"docs/config.md is stale; run `python -m landuse.core.config_doc > docs/config.md` ({missing[:5]})"


def test_config_reference_is_generated_output() -> None:
    assert (ROOT / "docs" / "config.md").read_text() == render()


def test_readme_opens_with_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first = readme[: readme.index("## A short tour")]
    assert "landuse run configs/compact.yaml" in first
    assert ".venv/bin/python -m pytest -q" in first
    assert ".venv/bin/python -m pytest -q" in (ROOT / ".ci" / "run").read_text()
