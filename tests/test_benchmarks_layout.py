"""benchmarks/ stays documented and importable as a package: its README names every
script, and no script edits sys.path (they run as `python -m benchmarks.<group>.<name>`
and import each other relatively; see benchmarks/README.md)."""
from __future__ import annotations

import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for ext in ("*.py", "*.sh") for p in BENCHMARKS.rglob(ext)
                 if p.name != "__init__.py")
@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="not a source checkout")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_each_script_is_in_the_readme(script):
    assert f"`{script.name}`" in (BENCHMARKS / "README.md").read_text()


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="not a source checkout")
@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.suffix == ".py"],
                         ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_no_script_edits_sys_path(script):
    assert "sys.path" not in script.read_text()
