"""The README's table of every setting, made from the settings' own declarations
(config.settings: default, bounds or choices, help line, schedule) and the command line's option
for each: `python -m dreamvid.cli.table` prints it; tests/test_config.py checks that the README
holds it as printed."""

from __future__ import annotations

from dataclasses import MISSING, fields

from dreamvid.cli.options import OPTIONS
from dreamvid.cli.parser import build_parser
from dreamvid.config.settings import SECTIONS, LiveSettings

START = "<!-- the settings table: made by `python -m dreamvid.cli.table`; tests/test_config.py checks it -->"
END = "<!-- end of the settings table -->"


def _allowed(rule, schedule: bool) -> str:
    """A rule (config.settings.RULES) in words, "a schedule" after it where the setting takes one."""
    if isinstance(rule, frozenset):
        text = ", ".join(map(str, sorted(rule)))
    elif isinstance(rule, tuple) and isinstance(rule[0], str):
        text = ", ".join(rule)
    elif isinstance(rule, tuple):
        lo, hi = rule
        text = f"{lo} .. {hi}" if hi is not None else f">= {lo}"
    else:
        text = ""
    return "; ".join(filter(None, (text, "a schedule" if schedule else "")))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_table() -> str:
    """The table, in Markdown, between its two marker lines (START, END)."""
    build_parser()  # every command's options made: OPTIONS then holds each setting's
    rows = [START, "", "| setting | option | default | allowed | what it does |", "|---|---|---|---|---|"]
    for section, cls in (*SECTIONS.items(), ("live", LiveSettings)):
        for f in fields(cls):
            if f.default is MISSING:  # set by the job, not given (live.sounds)
                continue
            key = f"{section}.{f.name}"
            option = OPTIONS.get(key) or OPTIONS.get(f.name, "")
            schedule = bool(f.metadata.get("schedule"))
            if schedule and section in ("video", "zoom") and f.name in ("step", "octaves", "iterations"):
                option = ""  # reached through --step, --octaves, --iterations-next given a schedule (its help says)
            default = "" if f.default in (None, "") else f"`{f.default}`"
            rows.append(f"| `{key}` | {f'`{option}`' if option else ''} | {default} | "
                        f"{_cell(_allowed(f.metadata.get('rule'), schedule))} | {_cell(f.metadata.get('help', ''))} |")
    return "\n".join([*rows, "", END])


if __name__ == "__main__":
    print(settings_table())
