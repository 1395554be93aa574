"""The chunk plan (plan.py) and a render in segments on this machine (segments.render_segments).

Tiny as test_pipeline's: the same clips (64x48, a pan; a pan with a hard cut), the same
three-layer network, dreams of 2 octaves of 3 steps; exact comparisons use PNG-folder outputs.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_pipeline import NTSC, frames_of, make_clip, small

from dreamvid.config.settings import build_config
from dreamvid.core.errors import ConfigError, ResumeError
from dreamvid.jobs import pipeline
from dreamvid.media.sources import open_source, probe_video
from dreamvid.render.plan import make_plan, scan_cuts, weights


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"cut": make_clip(d / "cut.mp4", 12, cut_at=5), "long": make_clip(d / "long.mp4", 14)}


# ----------------------------------------------------------------------------- the plan


def covered(plan):
    """Each output frame's segments' weights summed."""
    total = np.zeros(plan.frames)
    for k in range(plan.frames):
        total[k] = sum(w for _, w in plan.sources(k))
    return total


def test_plan_splits_at_cuts_then_long_shots_with_warmup_and_overlap():
    plan = make_plan(100, [30], chunk_frames=24, warmup_frames=4, overlap_frames=3)
    assert plan.cuts == (30,)
    shots = {}
    for s in plan.segments:
        shots.setdefault(s.shot, []).append(s)
        assert s.end - s.keep <= 24 + 3 and s.keep - s.start <= 4 + 0  # at most chunk + overlap kept
    assert shots[0][0].start == 0 and shots[0][-1].end == 30 and shots[1][0].start == 30 and shots[1][-1].end == 100
    assert [s.start == s.keep for s in shots[1]] == [True] + [False] * (len(shots[1]) - 1)
    for a, b in zip(plan.segments, plan.segments[1:]):
        if a.shot == b.shot:
            assert b.fade == 3 and b.keep == a.end - 3 and b.start == b.keep - 4  # overlap and warm-up
        else:
            assert b.start == b.keep == a.end == 30 and b.fade == 0  # a cut: no warm-up across it
    assert np.allclose(covered(plan), 1.0)  # every frame present once, weights summing to 1


def test_plan_depends_only_on_the_clip_and_settings():
    a = make_plan(500, [120, 121, 400], 100, 8, 8)
    assert a == make_plan(500, [400, 121, 120], 100, 8, 8)  # the order cuts were found in
    assert json.loads(json.dumps(a.to_dict())) == a.to_dict()  # plain data for the state and record
    assert make_plan(500, [120], 0, 8, 8).segments[0].end == 120  # chunk 0: shots whole
    assert len(make_plan(500, [], 0, 8, 8).segments) == 1


def test_crossfade_weights_are_smoothstep_strictly_inside():
    w = weights(8)
    assert np.all(np.diff(w) > 0) and 0 < w[0] < 0.1 and 0.9 < w[-1] < 1
    assert np.allclose(w + w[::-1], 1.0)  # symmetric: the dissolve's middle is half and half


def test_scan_cuts_finds_the_cut(clips):
    n, cuts = scan_cuts(iter(open_source(clips["cut"])), 27.0)
    assert (n, cuts) == (12, [5])


def test_segment_settings_are_validated():
    with pytest.raises(ConfigError, match="overlap"):
        build_config({"chunk_frames": 10, "overlap_frames": 8})
    assert build_config({"chunk_frames": 240}).video.warmup_frames == 8


# ----------------------------------------------------------------------------- rendering in segments


def test_segments_split_only_at_cuts_match_a_plain_render(model, clips, tmp_path):
    plain = pipeline.render_video(small(), clips["cut"], str(tmp_path / "plain") + "/", model=model)
    # chunk_frames above every shot's length: the plan splits at the cut only
    seg = pipeline.render_video(small(video__chunk_frames=100), clips["cut"], str(tmp_path / "seg") + "/", model=model)
    assert seg.cuts == plain.cuts == [5] and seg.frames == plain.frames == 12
    for a, b in zip(frames_of(tmp_path / "plain"), frames_of(tmp_path / "seg"), strict=True):
        assert np.array_equal(a, b)
    record = json.loads(Path(pipeline.record_path(str(tmp_path / "seg") + "/")).read_text())
    assert record["plan"]["cuts"] == [5] and [s[0] for s in record["plan"]["segments"]] == [0, 5]


def test_segments_with_warmup_and_overlap_give_every_frame_once(model, clips, tmp_path):
    cfg = small(video__chunk_frames=6, video__warmup_frames=2, video__overlap_frames=2)
    out = str(tmp_path / "out.mp4")
    seen = []
    result = pipeline.render_video(cfg, clips["long"], out, pipeline.Progress(frame=lambda k, s: seen.append(k)),
                                   model=model)
    probe = probe_video(out)
    assert probe["n_frames"] == result.frames == 14 and probe["fps"] == result.fps == NTSC
    plan = make_plan(14, [], 6, 2, 2)
    assert len(seen) == sum(s.frames for s in plan.segments)  # warm-ups and overlaps dreamed too
    assert not os.path.exists(pipeline.work_folder(out))


def test_segment_resume_continues_and_a_changed_plan_is_refused(model, clips, tmp_path):
    cfg = small(video__chunk_frames=6, video__warmup_frames=2, video__overlap_frames=2, output__keep_frames=True)
    whole = str(tmp_path / "whole") + "/"
    pipeline.render_video(cfg, clips["long"], whole, model=model)
    out = str(tmp_path / "part") + "/"

    def stop(k, _stats):
        if k == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(cfg, clips["long"], out, pipeline.Progress(frame=stop), model=model)
    other = small(video__chunk_frames=8, video__warmup_frames=2, video__overlap_frames=2)
    with pytest.raises(ResumeError):
        pipeline.render_video(other, clips["long"], out, model=model)
    result = pipeline.render_video(cfg, clips["long"], out, model=model)
    assert result.resumed_from > 0
    for a, b in zip(frames_of(whole), frames_of(out), strict=True):
        assert np.array_equal(a, b)


def test_without_ray_nothing_imports_it():
    import subprocess
    import sys

    code = ("import sys; from dreamvid.cli import parser as cli; from dreamvid.jobs import pipeline; "
            "from dreamvid.render import plan; "
            "cli.config_from_args(cli.build_parser().parse_args(['video', 'a.mp4', '-o', 'b.mp4', '--chunk-frames'])); "
            "assert 'ray' not in sys.modules and 'dreamvid.render.cluster' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_missing_names_the_extra(monkeypatch):
    from dreamvid.render import cluster

    monkeypatch.setattr(cluster, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'dreamvid\[ray\]'"):
        cluster.connect("auto", print)
