"""The floors: nothing below the harness imports it, built-in plugins import only what a third
party may, and the report never imports torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# Entry points (the CLI, the package's lazy names) may reach up; everything else below the harness may not.
ABOVE = {"cli.py", "__init__.py", "__main__.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def lower_floor_modules():
    files = [p for p in (ROOT / "ganbench").glob("*.py") if p.name not in ABOVE]
    return [*files, *(ROOT / "ganbench" / "evaluation").glob("*.py"), *(ROOT / "plugins").glob("*.py")]


@pytest.mark.parametrize("path", lower_floor_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_below_the_harness_imports_it(path):
    reaching_up = sorted(m for m in imported_modules(path) if m == "ganbench.harness" or m.startswith("ganbench.harness."))
    assert not reaching_up, f"{path.relative_to(ROOT)} imports {reaching_up}"


def test_the_report_never_imports_torch():
    code = (
        "import sys; import ganbench.report.render, ganbench.report.tuning, ganbench.report.verdicts; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
