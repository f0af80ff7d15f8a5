"""The CI script (.ci/run): its sanitizer run covers every test file but a named few, and
none of those few tests an op directly, so a test file that calls the CPU kernels cannot
drop out of the ASan/UBSan run unnoticed (a new file is in it by default)."""
import re

import pytest

from conftest import REPO

CI = REPO / ".ci" / "run"
# What marks a file as testing ops directly: the table of op cases, or gan_fast.ops
# imported at the top (every op-level file does; trainer-level files reach the ops
# through gan_fast.train, or import them inside a test to wrap one).
OP_LEVEL = re.compile(r"\bop_cases\b|^from gan_fast(?:\.ops)? import [^\n]*\bops\b"
                      r"|^from gan_fast\.ops import|^import gan_fast\.ops", re.M)


def sanitize_skip():
    """The (file, reason) entries of .ci/run's sanitize_skip array."""
    if not CI.exists():
        pytest.skip(f"no {CI}")
    block = re.search(r"^sanitize_skip=\((.*?)^\)", CI.read_text(), re.S | re.M)
    assert block, "no sanitize_skip=( ... ) array in .ci/run"
    entries = []
    for line in filter(None, map(str.strip, block.group(1).splitlines())):
        path, _, reason = line.partition("#")
        entries.append((path.strip(), reason.strip()))
    return entries


def test_the_sanitizer_run_takes_every_test_file_but_the_skipped():
    text = CI.read_text() if CI.exists() else pytest.skip(f"no {CI}")
    assert re.search(r'for f in tests/test_\*\.py; do\n\s*\[\[ " \$\{sanitize_skip\[\*\]\} " == '
                     r'\*" \$f "\* \]\] \|\| san_tests\+=\("\$f"\)', text), \
        ".ci/run no longer derives san_tests from tests/test_*.py minus sanitize_skip"
    assert re.search(r'pytest --capture=sys [^\n]*"\$\{san_tests\[@\]\}"', text), \
        "the sanitizer pytest command does not run san_tests"


def test_skipped_files_exist_say_why_and_test_no_op_directly():
    entries = sanitize_skip()
    assert entries
    for path, reason in entries:
        f = REPO / path
        assert f.is_file() and f.name.startswith("test_"), f"sanitize_skip: {path} is no test file"
        assert reason, f"sanitize_skip: {path} has no reason (a # comment)"
        found = OP_LEVEL.search(f.read_text())
        assert not found, (f"{path} tests ops directly ({found.group()!r}): it must run under "
                           f"the sanitizers; take it out of sanitize_skip in .ci/run")
