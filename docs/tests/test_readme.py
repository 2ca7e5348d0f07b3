"""The README opens with the two commands, and its links lead somewhere."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    lines = [line for line in README.splitlines() if line.strip()]
    assert lines[0].startswith("# ")
    fence = lines.index("```console")
    assert fence == 1, "the first thing after the title is the commands block"
    block = lines[fence + 1: lines.index("```", fence + 1)]
    assert [line.split()[0] for line in block] == ["./ci/serve", "./ci/test"]
    for command in ("ci/serve", "ci/test"):
        assert (ROOT / command).is_file()


def test_readme_links_point_to_existing_files():
    targets = re.findall(r"\]\(((?:docs|packages)/[^)#]*)\)", README)
    assert len(targets) >= 8
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing
