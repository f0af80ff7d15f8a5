"""The package's face: importing gan_fast from a source folder that was never built says how
to build it, and a compiled extension that is there but fails to load keeps its own error.

Each case copies gan_fast's Python files (no _C*.so) into a temporary folder under another
package name, so that the installed gan_fast (regular or editable) cannot answer the import
instead, and imports it in a fresh interpreter."""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import gan_fast

PACKAGE = "gan_fast_unbuilt"


def _copy_package(tmp_path):
    folder = tmp_path / PACKAGE
    folder.mkdir()
    for path in pathlib.Path(gan_fast.__file__).parent.glob("*.py"):   # not __path__[0]: an
        # editable install lists the folder of the built extension first
        shutil.copy(path, folder / path.name)
    assert (folder / "__init__.py").is_file()
    return folder


def _import(tmp_path):
    return subprocess.run([sys.executable, "-c", f"import {PACKAGE}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_unbuilt_source_tree_says_how_to_build(tmp_path):
    folder = _copy_package(tmp_path)
    r = _import(tmp_path)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: {PACKAGE}'s compiled extension _C is not in "
                           f"{folder}"), r.stderr
    assert "pip install -e . --no-build-isolation" in last and "pip install ." in last
    assert "`pytest`" in last and "partially initialized" not in last


def test_an_extension_that_fails_to_load_keeps_its_error(tmp_path):
    folder = _copy_package(tmp_path)
    (folder / "_C.py").write_text('raise ImportError("libcudart.so.13: cannot open shared '
                                  'object file")\n')
    r = _import(tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ("ImportError: libcudart.so.13: cannot open "
                                                 "shared object file"), r.stderr
