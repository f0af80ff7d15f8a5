"""The layers of the gan_fast package, checked from the source: every module imports only
modules of lower layers (imports inside functions included), so there are no import
cycles, and nothing inside the package imports its faces (gan_fast/__init__.py, cli.py).
Tests and benchmarks use no private (_underscore) name of the package."""
from __future__ import annotations

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "gan_fast"
REPO = PACKAGE.parent

# Lowest first. A module may import any module of a LOWER layer, none of its own or above.
LAYERS = [
    {"errors", "version", "data", "images", "plots"},   # no gan_fast imports
    {"_C", "reference", "walk"},                         # the extension; the specification;
                                                         # latent walks (uses images)
    {"ops"},                                             # the kernels' Python face
    {"backend"},                                         # device and backend choice
    {"cuda_graph"},                                      # capture and replay on a device
    {"model"},                                           # the networks
    {"checkpoint"},                                      # file format and schema
    {"engine"},                                          # training state and step
    {"monitor"},                                         # reading a run's numbers back
    {"judge"},                                           # the MNIST classifier
    {"quality"},                                         # evaluate()
    {"config"},                                          # TrainConfig, recipes
    {"trainer"},                                         # train(): the loop
    {"cli", "__init__"},                                 # faces: imported by nothing inside
    {"__main__"},                                        # `python -m gan_fast` runs the cli
]
LAYER_OF = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules():
    return {p.stem: p for p in PACKAGE.glob("*.py")}


def _imports(path):
    """(imported gan_fast module, line) for every import in the file, at any depth."""
    modules = _modules()
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] != "gan_fast":
                continue
            if node.level > 1:
                raise AssertionError(f"{path.name}:{node.lineno}: relative import beyond the package")
            parts = (node.module or "").split(".")
            if node.level == 0:
                parts = parts[1:]
            if parts and parts[0]:
                found.append((parts[0], node.lineno))          # from .x import y
            else:                                              # from . import x, y
                for alias in node.names:
                    name = alias.name
                    found.append((name if name in modules or name == "_C" else "__init__",
                                  node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "gan_fast":
                    found.append((parts[1] if len(parts) > 1 else "__init__", node.lineno))
    return found


def test_every_module_has_a_layer():
    unknown = sorted(set(_modules()) - set(LAYER_OF))
    assert not unknown, f"modules without a layer in tests/test_layers.py: {unknown}"


def test_imports_go_downwards_only():
    wrong = []
    for name, path in _modules().items():
        for target, line in _imports(path):
            if target not in LAYER_OF:
                wrong.append(f"{name}.py:{line} imports unknown gan_fast.{target}")
            elif LAYER_OF[target] >= LAYER_OF[name]:
                wrong.append(f"{name}.py:{line} imports {target} (layer {LAYER_OF[target]}), "
                             f"not below its own layer {LAYER_OF[name]}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    """The checker itself: an upward import hidden in a function body is found."""
    src = tmp_path / "model.py"
    src.write_text("def f():\n    from .trainer import train\n    from . import quality, _C\n")
    assert _imports(src) == [("trainer", 2), ("quality", 3), ("_C", 3)]


_PRIVATE = re.compile(r"\b(?:gan_fast|ops|reference|model|engine|trainer|checkpoint|ckpt|"
                      r"quality|judge|config|backend|data|images|plots|cli|M|E|R)\."
                      r"(_[A-Za-z][A-Za-z0-9_]*)")
_PRIVATE_FROM = re.compile(r"from gan_fast(?:\.[a-z_]+)? import ([^\n]+)")


def test_tests_and_benchmarks_use_no_private_names():
    """gan_fast._C is the extension module (its own public API); everything else with a
    leading underscore is private to the package."""
    wrong = []
    files = list((REPO / "tests").glob("*.py")) + list((REPO / "benchmarks").rglob("*.py"))
    for path in files:
        if path.name == "test_layers.py":
            continue
        text = path.read_text()
        for m in _PRIVATE.finditer(text):
            if m.group(1) != "_C" and not m.group(1).startswith("__"):
                wrong.append(f"{path.relative_to(REPO)}: {m.group(0)}")
        for m in _PRIVATE_FROM.finditer(text):
            names = [n.strip(" ()").split(" as ")[0] for n in m.group(1).split(",")]
            wrong += [f"{path.relative_to(REPO)}: imports {n}" for n in names
                      if n.startswith("_") and n != "_C" and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)
