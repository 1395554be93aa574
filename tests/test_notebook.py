"""The example notebook (examples/dreamvid.ipynb) run as a user runs it: a real Jupyter kernel
(ipykernel's python3) driven by nbclient on the CPU, its parameters replaced by small ones in a
cell after its own (as papermill injects them), in a folder of its own; then the executed notebook
read back: the clip's result displays as a playable <video>, the gallery as an image, every cell
ran without an error. The display objects themselves (RenderResult's HTML, dreamvid.show) are
tested without a kernel below."""

from __future__ import annotations

import base64
import os
import re
import sys
import time
import types

import numpy as np
import pytest

import dreamvid
from dreamvid.core import notebook
from dreamvid.core.progress import RenderResult

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "dreamvid.ipynb")
SAMPLES = os.path.join(ROOT, "samples")
SMALL = {"WIDTH": 96, "FRAMES": 4, "PRESET": "preview", "MODEL": "vgg16-hed",
         "LAYERS": "block3_conv3,block4_conv3", "SAMPLES": SAMPLES}


def cell_with(nb, text):
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


def html_of(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs if o.output_type == "execute_result")


def test_the_example_notebook_runs_and_shows_its_results(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install 'dreamvid[test]')")
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install 'dreamvid[test]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install 'dreamvid[test]')")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(params + 1, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in SMALL.items()),
                                                          metadata={"tags": ["injected-parameters"]}))
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - t0
    print(f"\nthe example notebook ran in {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    bars = "".join(o.get("text", "") for o in cell_with(nb, "render_video").outputs if o.output_type == "stream")
    assert "4/4" in bars and "frame" in bars, bars  # the progress bar came by itself
    clip = html_of(cell_with(nb, "render_video"))
    assert re.search(r'<video [^>]*controls.*<source src="data:video/mp4;base64,', clip, re.S), clip[:300]
    assert "frames</th><td" in clip and ">4<" in clip and "vgg16-hed" in clip  # its frames and settings
    gallery = cell_with(nb, "render_gallery")
    images = [o["data"]["image/jpeg"] for o in gallery.outputs if "image/jpeg" in o.get("data", {})]
    assert images and base64.b64decode(images[0])[:3] == b"\xff\xd8\xff"  # the gallery's sheet, a JPEG
    assert "<img" in html_of(gallery)
    assert '<source src="data:video/webm;base64,' in html_of(cell_with(nb, "render_zoom"))
    still = cell_with(nb, "dreamvid.dream(")
    assert any("image/png" in o.get("data", {}) for o in still.outputs)
    assert html_of(cell_with(nb, "VideoDreamer")).count("<img") == 3
    assert sorted(os.listdir(tmp_path)) == ["gallery.jpg", "gallery.jpg.json", "pan-dream.mp4", "pan-dream.mp4.json",
                                            "pan-sheet.jpg", "zoom.webm", "zoom.webm.json"]


def test_a_result_shows_as_its_output_with_frames_time_and_settings(tmp_path):
    """A RenderResult's display without a kernel: a video embedded, an image for a still, a table."""
    clip = tmp_path / "c.webm"
    clip.write_bytes(b"\x1aE\xdf\xa3 not really a webm")
    record = tmp_path / "c.webm.json"
    record.write_text('{"network": {"used": "vgg16-hed"}, "objective": "block3_conv3", "device": "CPU",'
                      ' "settings": {"dream": {"octaves": 2, "iterations": 4, "step": 1.5, "seed": 1},'
                      ' "video": {"iterations_next": 2, "blend": 0.9}}}')
    from fractions import Fraction

    result = RenderResult(str(clip), 12, 6.0, Fraction(30000, 1001), cuts=[5], record=str(record))
    page = result._repr_html_()
    assert f'<source src="data:video/webm;base64,{base64.b64encode(clip.read_bytes()).decode()}"' in page
    for words in ("<th style=\"text-align:left\">frames</th>", ">12<", "0.50 s a frame", "29.970 frames/s (30000/1001)",
                  ">5<", "vgg16-hed: block3_conv3", "2 octaves of 4 steps of 1.5, 2 after the first frame",
                  "c.webm.json"):
        assert words in page, (words, page[-600:])
    assert result._repr_png_() is None and result._repr_jpeg_() is None  # a video is no image output
    monkey_limit = notebook.EMBED_LIMIT
    try:
        notebook.EMBED_LIMIT = 4
        assert 'src="' in result._repr_html_() and "not embedded" in result._repr_html_()
    finally:
        notebook.EMBED_LIMIT = monkey_limit
    still = tmp_path / "s.png"
    from dreamvid.core.files import write_image

    write_image(str(still), np.full((8, 12, 3), 200, np.uint8))
    assert RenderResult(str(still), 1, 1.0, Fraction(0))._repr_png_() == still.read_bytes()


def test_show_takes_arrays_files_and_results_and_refuses_the_rest_in_one_line(tmp_path):
    shown = dreamvid.show(np.zeros((6, 8, 3), np.uint8))
    assert shown._repr_html_().startswith('<img src="data:image/png;base64,') and shown._repr_png_()[:4] == b"\x89PNG"
    assert shown._repr_html_() == shown.html
    assert dreamvid.show([np.zeros((6, 8, 3), np.uint8)] * 2).html.count("<img") == 2
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a")
    assert 'src="data:image/gif;base64,' in dreamvid.show(gif).html
    folder = tmp_path / "frames"
    folder.mkdir()
    from dreamvid.core.files import write_image

    for k in (1, 2):
        write_image(str(folder / f"frame_00000{k}.png"), np.zeros((4, 4, 3), np.uint8))
    assert "2 frames in frames/" in dreamvid.show(str(folder) + "/").html
    for bad in (str(tmp_path / "none.mp4"), str(tmp_path / "a.txt"), 3, np.zeros((4, 4, 4))):
        if isinstance(bad, str) and bad.endswith(".txt"):
            open(bad, "w").close()
        with pytest.raises(dreamvid.InputError) as err:
            dreamvid.show(bad)
        assert "\n" not in str(err.value)


def test_a_job_shows_a_bar_by_itself_in_a_notebook_and_nothing_elsewhere(monkeypatch, capsys, tiny_model, texture):
    """Given no progress=, a job shows tqdm's bar in a kernel (here a stand-in for IPython with a
    kernel) and prints nothing in a script; asking which imports no IPython."""
    options = dict(model=tiny_model, layers="conv2", octaves=2, iterations=2, seed=1)
    image = texture(32, 48)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert notebook.in_notebook() is False and "IPython" not in sys.modules
    dreamvid.dream(image, **options)
    assert capsys.readouterr() == ("", "")  # a script: silent, as always
    shell = types.SimpleNamespace(kernel=object(), config={})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert notebook.in_notebook() is True
    dreamvid.dream(image, **options)
    err = capsys.readouterr().err
    assert "100%" in err and "octave/s" in err, err  # the bar, closed at the job's end
    updates = []
    dreamvid.dream(image, progress=updates.append, **options)
    assert "octave" not in capsys.readouterr().err and updates  # a callback given: no bar of its own
