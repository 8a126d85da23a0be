"""The README and docs/ link only to files that exist, and the README stays a front page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_relative_link_reaches_a_file():
    broken = [f"{page.relative_to(ROOT)} -> {target}" for page in _pages() for target in LINK.findall(page.read_text())
              if "://" not in target and not target.startswith("#")
              and not (page.parent / target.split("#", 1)[0]).exists()]
    assert broken == []


def test_the_readme_is_a_front_page_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text
    assert len(text.splitlines()) <= 200, "the README is a front page: move the detail into docs/"
