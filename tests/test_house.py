"""The house rules, checked on the source: dreamvid's modules in layers whose imports only look
down (DESIGN.md, "Layers"), no import circle, no private name crossing a module, and no
function-local import of a dreamvid module unless its line says why (a heavy or optional library
behind it). The graph is built from the source with `ast`, module- and function-level imports
together, so a test can fail where a new import breaks a rule."""

from __future__ import annotations

import ast
import pathlib

import dreamvid

# A module's layer is its folder (lowest first); a module may import from its own layer or a lower
# one. The same table is in DESIGN.md. The package's own modules: __init__ and api (the Python
# face), version (the ground).
LAYERS = [
    ("ground", {"core", "version"}),
    ("config", {"config"}),
    ("stages", {"media", "motion"}),
    ("engine", {"engine"}),
    ("render", {"render"}),
    ("jobs", {"jobs", "live"}),
    ("api", {"api", ""}),  # "": the package's __init__
    ("faces", {"cli", "ui", "measure"}),
]
TOP_MODULES = 6  # at most this many modules directly in dreamvid/: the rest live in the folders
FOLDER_LEVEL = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


class _Levels(dict):
    """module name -> its layer's index, read from the module's folder (its first name)."""

    def __missing__(self, module: str) -> int:
        return FOLDER_LEVEL[module.split(".")[0]]

    def __contains__(self, module) -> bool:
        return module.split(".")[0] in FOLDER_LEVEL


LEVEL = _Levels()
ROOT = pathlib.Path(dreamvid.__file__).parent


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts).removesuffix("__init__").rstrip(".")] = p
    return out


def _imports():
    """(module, target module, imported name or None, line, function-level, the line's text)."""
    mods = _modules()
    found = []
    for name, path in mods.items():
        src = path.read_text()
        lines = src.splitlines()

        def visit(node, in_function: bool, name=name, lines=lines):
            for child in ast.iter_child_nodes(node):
                local = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "dreamvid":
                    base = child.module.removeprefix("dreamvid").lstrip(".")
                    for alias in child.names:
                        sub = f"{base}.{alias.name}".lstrip(".")
                        target = sub if sub in mods else base
                        found.append((name, target, alias.name, child.lineno, local, lines[child.lineno - 1]))
                elif isinstance(child, ast.Import):
                    for alias in child.names:
                        if alias.name.split(".")[0] == "dreamvid":
                            target = alias.name.removeprefix("dreamvid").lstrip(".")
                            found.append((name, target, None, child.lineno, local, lines[child.lineno - 1]))
                visit(child, local)

        visit(ast.parse(src), False)
    return mods, found


def test_every_module_has_a_layer():
    mods, _ = _imports()
    assert sorted(m for m in mods if m not in LEVEL) == [], \
        "put each new module in a layer's folder (here and DESIGN.md)"


def test_the_tree_shows_the_layers():
    """Few modules directly in dreamvid/, each folder a layer with a docstring that says what it holds."""
    top = sorted(p.stem for p in ROOT.glob("*.py"))
    assert len(top) <= TOP_MODULES, top
    folders = sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name in FOLDER_LEVEL)
    assert len(folders) >= 5 and set(folders) == {f for f in FOLDER_LEVEL if f and (ROOT / f).is_dir()}, folders
    for folder in folders:
        doc = ast.get_docstring(ast.parse((ROOT / folder / "__init__.py").read_text()))
        assert doc, f"dreamvid/{folder}/__init__.py needs a docstring saying what the folder holds"


MAX_MODULE_LINES, MAX_CLASS_LINES = 550, 250


def test_no_module_or_class_grows_past_what_one_reader_holds():
    mods, _ = _imports()
    long = {}
    for name, path in mods.items():
        src = path.read_text()
        if len(src.splitlines()) > MAX_MODULE_LINES:
            long[name] = len(src.splitlines())
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long[f"{name}.{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}, f"split these along the data flow: {long}"


def upward(found) -> list[str]:
    return [f"{m} (layer {LAYERS[LEVEL[m]][0]}) imports {t} (layer {LAYERS[LEVEL[t]][0]}), line {n}"
            for m, t, _, n, _, _ in found if t != m and LEVEL[t] > LEVEL[m]]


def circles(found) -> list[str]:
    edges: dict[str, set[str]] = {}
    for m, t, _, _, _, _ in found:
        if t != m:
            edges.setdefault(m, set()).add(t)
    state: dict[str, int] = {}
    found_circles = []

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found_circles.append(" -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [])
    return found_circles


def test_imports_only_look_down():
    assert upward(_imports()[1]) == []


def test_no_import_circle():
    assert circles(_imports()[1]) == []


def test_no_private_name_crosses_a_module():
    _, found = _imports()
    private = [f"{m}:{n} imports {t}.{name}" for m, t, name, n, _, _ in found
               if name and name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_function_level_imports_of_dreamvid_say_why():
    _, found = _imports()
    silent = [f"{m}:{n}: {text.strip()}" for m, t, _, n, local, text in found if local and "#" not in text]
    assert silent == []


def test_the_checks_catch_what_they_are_for():
    """The checks themselves fail on a made-up graph: a stage importing a job, a circle."""
    found = [("media.sources", "jobs.pipeline", "render_video", 1, True,
              "    from dreamvid.jobs.pipeline import render_video"),
             ("jobs.pipeline", "media.sources", "read_image", 2, False,
              "from dreamvid.media.sources import read_image")]
    assert upward(found) == ["media.sources (layer stages) imports jobs.pipeline (layer jobs), line 1"]
    assert circles(found) == ["jobs.pipeline -> media.sources -> jobs.pipeline"]
