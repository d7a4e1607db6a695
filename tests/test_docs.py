"""The README and the pages of docs/: short entry point, links that resolve inside the repository, and
command blocks that name real commands and real config files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from musictag.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.S | re.M)


def test_the_readme_is_an_entry_point():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    for page in ("corpora", "models", "training", "tagging", "probing", "benchmarks", "development"):
        assert f"(docs/{page}.md)" in "\n".join(lines), page


def test_every_link_resolves_inside_the_repository():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if target.startswith("#"):
                continue
            path = target.split("#")[0]
            if "://" in target or target.startswith(("/", "mailto:")) or not (page.parent / path).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def test_command_blocks_name_real_commands_and_files():
    wrong = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                command = line.split("#")[0].strip()
                for part in re.split(r"\s*(?:;|&&)\s*", command):
                    words = part.split()
                    if words[:1] == ["musictag"] and len(words) > 1 and not words[1].startswith("-"):
                        if words[1] not in COMMANDS:
                            wrong.append(f"{page.name}: {part}")
                    for config in re.findall(r"experiments/[\w/.-]+\.yaml", part):
                        if not (REPO / config).is_file():
                            wrong.append(f"{page.name}: {config} does not exist")
    assert wrong == []


def test_the_site_lists_every_page():
    site = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = sorted(next(iter(entry.values())) for entry in site["nav"])
    assert listed == sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert site["strict"] is True
