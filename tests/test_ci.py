"""The CI script (.ci/run): its sanitizer run covers every test file but a named few, and
those few call no kernel, so a test file that calls the CPU kernels cannot drop out of the
ASan/UBSan run unnoticed (a new file is in it by default).

"Calls no kernel" is checked two ways: here on the source (a listed file imports neither
the table of op cases nor gan_fast.ops), and while the listed files' own tests run
(tests/conftest.py notes every call of a gan_fast._C kernel made by one of their tests
and fails it at teardown); test_the_tripwire_notes_every_kernel_call checks that
tripwire."""
import re

import numpy as np
import pytest

import gan_fast
from conftest import (CI_SCRIPT, NOT_KERNELS, REPO, SANITIZE_SKIP_FILES,
                      kernel_calls_recorded, sanitize_skip_entries)
from gan_fast import _C, ops

# What marks a file as testing ops directly: the table of op cases, or gan_fast.ops
# imported at the top (every op-level file does; trainer-level files reach the ops
# through gan_fast.train, or import them inside a test to wrap one).
OP_LEVEL = re.compile(r"\bop_cases\b|^from gan_fast(?:\.ops)? import [^\n]*\bops\b"
                      r"|^from gan_fast\.ops import|^import gan_fast\.ops", re.M)


def _entries():
    if not CI_SCRIPT.exists():
        pytest.skip(f"no {CI_SCRIPT}")
    return sanitize_skip_entries()


def test_the_sanitizer_run_takes_every_test_file_but_the_skipped():
    _entries()
    text = CI_SCRIPT.read_text()
    assert re.search(r'for f in tests/test_\*\.py; do\n\s*\[\[ " \$\{sanitize_skip\[\*\]\} " == '
                     r'\*" \$f "\* \]\] \|\| san_tests\+=\("\$f"\)', text), \
        ".ci/run no longer derives san_tests from tests/test_*.py minus sanitize_skip"
    assert re.search(r'pytest --capture=sys [^\n]*"\$\{san_tests\[@\]\}"', text), \
        "the sanitizer pytest command does not run san_tests"


def test_skipped_files_exist_say_why_and_test_no_op_directly():
    entries = _entries()
    assert entries
    for path, reason in entries:
        f = REPO / path
        assert f.is_file() and f.name.startswith("test_"), f"sanitize_skip: {path} is no test file"
        assert reason, f"sanitize_skip: {path} has no reason (a # comment)"
        assert "calls no kernel" in reason, (
            f"sanitize_skip: {path}: {reason!r}: the only reason a file may stay out of the "
            f"sanitizer run is that it calls no kernel (say so: 'calls no kernel')")
        found = OP_LEVEL.search(f.read_text())
        assert not found, (f"{path} tests ops directly ({found.group()!r}): it must run under "
                           f"the sanitizers; take it out of sanitize_skip in .ci/run")
    assert SANITIZE_SKIP_FILES == {REPO / path for path, _ in entries}, \
        "tests/conftest.py's tripwire does not watch the files of sanitize_skip"


def test_the_tripwire_notes_every_kernel_call():
    """The tripwire (tests/conftest.py) notes a kernel called through gan_fast.ops, lets it
    compute as usual, wraps every function of _C but the settings and queries, and puts
    the originals back."""
    kernels = {n for n in dir(_C) if not n.startswith("__") and n not in NOT_KERNELS
               and callable(getattr(_C, n)) and not isinstance(getattr(_C, n), type)}
    assert set(ops.__all__) - {"dropout_keep_mask"} <= kernels
    original = _C.tanh_forward
    x = np.linspace(-2, 2, 7, dtype=np.float32)
    with kernel_calls_recorded() as calls:
        assert _C.tanh_forward is not original
        y = ops.tanh_forward(x)
        ops.leaky_relu_forward(x, 0.2)
        gan_fast.get_num_threads()
    assert calls == ["tanh_forward", "leaky_relu_forward"]
    np.testing.assert_array_equal(y, ops.tanh_forward(x))
    assert _C.tanh_forward is original
