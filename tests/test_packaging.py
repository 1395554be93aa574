"""What a user installs: the package the suite imports is the installed one (CI installs the wheel
built from the checkout into a fresh environment and sets DREAMVID_TEST_INSTALLED=1), every
package and preset is in it, and the installed `dreamvid` command runs from any folder."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from importlib import resources

import pytest
import setuptools

import dreamvid
from dreamvid.config.presets import list_presets, load_preset

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTALLED = os.path.commonpath([os.path.abspath(dreamvid.__file__), CHECKOUT]) != CHECKOUT


def test_the_suite_runs_against_the_installed_package():
    if not INSTALLED and os.environ.get("DREAMVID_TEST_INSTALLED") != "1":
        pytest.skip(f"dreamvid is imported from the checkout ({dreamvid.__file__}): PYTHONPATH or an editable install")
    assert INSTALLED, f"dreamvid was imported from the checkout ({dreamvid.__file__}), not the installed package"


def test_setup_cfg_lists_every_package_setuptools_finds():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(CHECKOUT, "setup.cfg"))
    listed = set(cfg["options"]["packages"].split())
    found = set(setuptools.find_packages(CHECKOUT, include=["dreamvid", "dreamvid.*"]))
    assert found <= listed, f"add {sorted(found - listed)} to setup.cfg's packages"
    assert listed - found == {"dreamvid.presets"}  # the top-level presets/ folder, mapped by package_dir


def test_every_preset_is_package_data():
    shipped = sorted(n[:-5] for n in os.listdir(os.path.join(CHECKOUT, "presets")) if n.endswith(".toml"))
    assert list_presets() == shipped
    if INSTALLED:  # read through importlib.resources from the installed package itself
        inside = resources.files("dreamvid") / "presets"
        assert sorted(p.name[:-5] for p in inside.iterdir() if p.name.endswith(".toml")) == shipped
    for name in shipped:
        values, description = load_preset(name)
        assert values and description


def test_the_installed_command_runs_from_another_folder_with_a_preset(tmp_path, tiny_keras_file):
    exe = shutil.which("dreamvid", path=os.path.dirname(sys.executable)) or shutil.which("dreamvid")
    if exe is None:
        pytest.skip("no installed dreamvid command on this path (the package is not installed here)")
    shutil.copy(os.path.join(CHECKOUT, "samples", "coffee.jpg"), tmp_path / "photo.jpg")
    proc = subprocess.run([exe, "image", "photo.jpg", "-o", "out.png", "--preset", "preview", "--width", "64",
                           "--model", str(tiny_keras_file), "--layers", "conv2", "--seed", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.png").stat().st_size > 0 and (tmp_path / "out.png.json").is_file()
    listing = subprocess.run([exe, "presets"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "classic" in listing.stdout
