"""Contact sheets: which frames are shown, where each lands in the grid, the command."""

import numpy as np
import pytest
from cli_asserts import one_line_error
from helpers import write_clip

from dreamvid.cli import main
from dreamvid.core.errors import ConfigError
from dreamvid.jobs import pipeline
from dreamvid.media.sheets import contact_sheet, pick_frames
from dreamvid.media.sources import read_image

W, H, N = 64, 48, 10


def colour(k):
    """Frame k's flat colour: a different one per frame, far apart."""
    return np.array([20 + 23 * k, 200 - 17 * k, (90 + 61 * k) % 256], np.uint8)


@pytest.fixture
def frames_dir(tmp_path):
    """N flat-coloured frames as a PNG folder (lossless, so colours survive exactly)."""
    return write_clip(str(tmp_path / "frames") + "/", [np.broadcast_to(colour(k), (H, W, 3)).copy() for k in range(N)])


def test_pick_frames_spreads_evenly_and_keeps_first_and_last():
    assert pick_frames(10, 4) == [0, 3, 6, 9]
    assert pick_frames(300, 5) == [0, 75, 150, 224, 299]
    assert pick_frames(3, 12) == [0, 1, 2]
    assert pick_frames(7, 1) == [6]
    with pytest.raises(ConfigError):
        pick_frames(5, 0)


def test_sheet_lays_the_picked_frames_out_row_by_row(frames_dir):
    sheet, shown = contact_sheet(frames_dir, count=4, columns=2, width=2 * 100 + 3 * 4, labels=False)
    assert shown == [0, 3, 6, 9]
    cell_w = 100
    cell_h = round(H * cell_w / W)  # 75
    assert sheet.shape == (2 * cell_h + 3 * 4, 2 * cell_w + 3 * 4, 3)
    for n, k in enumerate(shown):
        r, c = divmod(n, 2)
        y, x = 4 + r * (cell_h + 4) + cell_h // 2, 4 + c * (cell_w + 4) + cell_w // 2
        assert np.abs(sheet[y, x].astype(int) - colour(k).astype(int)).max() <= 1, (k, sheet[y, x])
    assert tuple(sheet[0, 0]) == (24, 24, 24)  # the background between cells


def test_labels_mark_the_corner_only(frames_dir):
    plain, _ = contact_sheet(frames_dir, count=2, columns=2, labels=False)
    labelled, _ = contact_sheet(frames_dir, count=2, columns=2, labels=True)
    changed = np.any(plain != labelled, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any() and ys.max() < plain.shape[0] // 3  # the number sits in the top corner


def test_sheet_command_writes_the_sheet_and_rejects_a_bad_format(frames_dir, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["sheet", frames_dir, "-o", str(out), "--count", "3", "--columns", "3", "--sheet-width", "400"]) == 0
    img = read_image(str(out))
    assert img.shape[1] == 400 and img.shape[0] < 200
    one_line_error(main(["sheet", frames_dir, "-o", str(tmp_path / "sheet.txt")]), capsys.readouterr().err, ".txt")
    assert pipeline.render_sheet(frames_dir, str(tmp_path / "s.jpg"), count=20).frames == N
