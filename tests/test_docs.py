"""The documentation cannot rot: the README's quick start runs, the API reference is current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests._pg import Database

ROOT = Path(__file__).resolve().parent.parent


def quick_start_files() -> dict[str, str]:
    """The README's Python blocks that start with a ``# <file>.py`` line, by file name."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    files = {}
    for block in blocks:
        first = block.splitlines()[0]
        match = re.match(r"# (\w+\.py)", first)
        if match:
            files[match.group(1)] = block
    return files


def test_readme_quick_start_runs(empty_db: Database, tmp_path: Path) -> None:
    files = quick_start_files()
    assert set(files) == {"models.py", "app.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        env={
            **os.environ,
            "DATABASE_URL": empty_db.url.render_as_string(hide_password=False),
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == ["charging for book"]


def test_api_reference_is_current() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate_api.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert committed == generated, "docs/api.md is stale: run  python docs/generate_api.py > docs/api.md"


def test_documentation_links_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
