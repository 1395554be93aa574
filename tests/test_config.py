"""The settings (dreamvid.config.settings): each declared once, with its default, its reason and its
rule; what the command line and the page show is made from that declaration; presets, records
and keyword settings all pass through one validation."""

from __future__ import annotations

import ast
import pathlib
from dataclasses import fields

import pytest

import dreamvid
from dreamvid.config.presets import job_config, load_preset
from dreamvid.config.settings import RULES, SECTIONS, build_config
from dreamvid.core.errors import ConfigError

ROOT = pathlib.Path(dreamvid.__file__).parent
SETTINGS = {f.name: f for cls in SECTIONS.values() for f in fields(cls)}
DEFAULTS_OF = {}  # name -> the defaults any section gives it
for _cls in SECTIONS.values():
    for _f in fields(_cls):
        DEFAULTS_OF.setdefault(_f.name, []).append(_f.default)


def literal_defaults(tree: ast.AST):
    """(name, line, value) of every parameter or dataclass field given a literal default in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults)) + [
                (arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for arg, d in pairs:
                if isinstance(d, ast.Constant) and d.value is not None and not isinstance(d.value, bool):
                    yield arg.arg, d.lineno, d.value
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and \
                        isinstance(item.value, ast.Constant) and item.value.value is not None and \
                        not isinstance(item.value.value, bool):
                    yield item.target.id, item.lineno, item.value.value


def test_no_setting_has_its_default_declared_twice():
    """A setting's default lives in its dataclass field only: a parameter or a field elsewhere
    named like a setting that writes the same default again would drift from it when it changes
    (a stage's own neutral value, such as a sink's start at 0 s, is not the setting's default)."""
    twice = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "config" / "settings.py":
            continue
        for name, line, value in literal_defaults(ast.parse(path.read_text())):
            if name in DEFAULTS_OF and value in DEFAULTS_OF[name]:
                twice.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert twice == [], "take these defaults from dreamvid.config.settings: " + "; ".join(twice)


def test_the_check_finds_a_default_written_twice():
    tree = ast.parse("def open_sink(path, *, crf: int = 18, codec='h264'):\n    pass\n"
                     "class Look:\n    carry_limit: float = 3.0\n")
    assert sorted(n for n, _, _ in literal_defaults(tree)) == ["carry_limit", "codec", "crf"]


def test_every_rule_names_a_setting_and_every_choice_is_its_own_default_s_kind():
    live = {"seconds", "frames", "fps", "min_steps", "max_steps", "min_octaves", "pace"}
    assert sorted(set(RULES) - set(SETTINGS) - live) == []
    for name, rule in RULES.items():
        if name in SETTINGS and isinstance(rule, tuple) and rule and isinstance(rule[0], str):
            default = SETTINGS[name].default
            assert default is None or default in rule, (name, default, rule)


@pytest.mark.parametrize("name", sorted(n for n, r in RULES.items() if n in SETTINGS and isinstance(r, tuple)
                                        and len(r) == 2 and not isinstance(r[0], str) and r[0] is not None))
def test_a_value_below_a_setting_s_bound_is_refused_in_one_line(name):
    section = next(s for s, cls in SECTIONS.items() if name in {f.name for f in fields(cls)})
    low = RULES[name][0]
    with pytest.raises(ConfigError) as err:
        build_config({f"{section}.{name}": low - 1})
    assert name in str(err.value) and "\n" not in str(err.value)


def test_presets_validate_and_flags_override_them():
    for preset in ("classic", "preview", "gentle"):
        values, _ = load_preset(preset)
        build_config(values)  # every named preset is valid
    cfg = job_config("video", {"octaves": 2}, "classic")
    assert cfg.dream.octaves == 2 and cfg.dream.layers == "mixed4c"


def test_every_setting_declares_its_help_and_the_options_show_it(capsys):
    """Each setting's help line is declared with it (settings.setting) and `--help` shows it."""
    from dreamvid.cli import main
    from dreamvid.cli.options import OPTIONS
    from dreamvid.config.settings import LiveSettings, help_of

    declared = [(s, f) for s, cls in (*SECTIONS.items(), ("live", LiveSettings)) for f in fields(cls)
                if f.name != "sounds"]
    assert [f"{s}.{f.name}" for s, f in declared if not f.metadata.get("help")] == []
    shown = ""
    for command in ("image", "video", "zoom", "live", "gallery"):
        try:
            assert main([command, "--help"]) in (0, None)
        except SystemExit as done:
            assert done.code in (0, None)
        shown += " ".join(capsys.readouterr().out.split())
    # worded for the command: --no-audio, the segments' length alone, --pan X,Y (the command line's
    # way to give pan_x and pan_y at once)
    worded = {"audio", "chunk_frames", "ray", "pan"}
    missing = [key for key in OPTIONS if key not in worded and " ".join(help_of(key).split()) not in shown]
    assert len(OPTIONS) > 60 and missing == []


def test_the_readme_holds_the_settings_table_as_made():
    """The README's table of every setting is the one cli/table.py makes from the declarations:
    run `python -m dreamvid.cli.table` and paste it between its marker lines after a change."""
    from dreamvid.cli.table import settings_table

    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    assert settings_table() in readme.read_text(encoding="utf-8")
