"""The type stubs of the extension list exactly the functions it exports."""
import pathlib
import re

from gan_fast import _C

STUB = pathlib.Path(__file__).resolve().parents[1] / "gan_fast" / "_C.pyi"


def test_stub_lists_every_extension_function():
    stubbed = set(re.findall(r"^def (\w+)", STUB.read_text(), re.M))
    exported = {n for n in dir(_C) if not n.startswith("__") and callable(getattr(_C, n))
                and n != "KernelError"}  # private functions (_set_kernel_variant) included
    assert stubbed == exported
