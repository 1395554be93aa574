"""Behaviour tests for dreamvid.jobs.pipeline: the frame loop, scene cuts, resume, zoom and stills.

Everything is tiny so the file runs in well under a minute on two CPU cores:
- the network is a three-layer random conv net (c1, c2 stride 2, c3) built here, saved as .keras
  and loaded through load_model, as a user's own model file would be;
- clips are 64x48 at 30000/1001 fps, written losslessly (crf 0) with the sinks: a smooth
  grey-level texture (noise octaves of 32, 16 and 8 px cells, tinted warm) seen through a window
  that pans 2 px right per frame (cut_score about 8 within the shot); the cut clip switches to
  another texture, tinted cool, halfway (cut_score about 49);
- dreams take 2 octaves of 3 steps (2 steps after a shot's first frame);
- exact comparisons use PNG-folder outputs (a path ending in '/'), since MP4 is lossy.
"""

import glob
import json
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import pan, tinted_texture, write_clip

from dreamvid.config.presets import load_preset
from dreamvid.config.settings import Config, build_config
from dreamvid.core.errors import ConfigError, OutputError, ResumeError
from dreamvid.core.frames import amount
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.objectives import parse
from dreamvid.jobs import pipeline
from dreamvid.measure.metrics import added_amount, detail_flicker
from dreamvid.media.sources import open_source, probe_video, read_image
from dreamvid.motion.zoom import estimate_zoom
from dreamvid.render.chain import touch_blend
from dreamvid.render.workfolder import Work

NTSC = Fraction(30000, 1001)
W, H = 64, 48
PAN = 2  # pixels per frame


def make_clip(path, n, cut_at=None):
    """n frames panning over one texture; from `cut_at` on, over another (a hard cut)."""
    frames = pan(tinted_texture(H, W + PAN * n, seed=1, tint=(1.0, 0.8, 0.6)), n, W, PAN)
    if cut_at is not None:
        frames[cut_at:] = pan(tinted_texture(H, W + PAN * n, seed=2, tint=(0.6, 0.8, 1.0)), n, W, PAN)[cut_at:]
    return str(write_clip(path, frames, fps=NTSC))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"pan": make_clip(d / "pan.mp4", 10), "cut": make_clip(d / "cut.mp4", 8, cut_at=4),
            "long": make_clip(d / "long.mp4", 20)}


def small(**changes):
    cfg = Config()
    cfg.dream.octaves, cfg.dream.iterations, cfg.dream.seed = 2, 3, 7
    cfg.video.iterations_next = 2
    for key, value in changes.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return cfg


def frames_of(folder):
    return [read_image(f) for f in sorted(glob.glob(os.path.join(folder, "*.png")))]


# ----------------------------------------------------------------------------- video


def test_video_keeps_frame_count_and_exact_rate(model, clips, tmp_path):
    out = str(tmp_path / "out.mp4")
    seen = []
    result = pipeline.render_video(small(), clips["pan"], out, pipeline.Progress(frame=lambda k, s: seen.append(k)),
                                   model=model)
    probe = probe_video(out)
    assert probe["n_frames"] == probe_video(clips["pan"])["n_frames"] == result.frames == 10
    assert probe["fps"] == result.fps == NTSC
    assert (probe["width"], probe["height"]) == (W, H)
    assert seen == list(range(10)) and result.cuts == [] and result.resumed_from == 0
    assert not os.path.exists(pipeline.work_folder(out))  # removed once the output is complete


def test_flow_guided_detail_flickers_less_than_independent_frames(model, clips, tmp_path):
    inputs = list(open_source(clips["pan"]))
    pipeline.render_video(small(), clips["pan"], str(tmp_path / "flow") + "/", model=model)
    pipeline.render_video(small(video__no_flow=True), clips["pan"], str(tmp_path / "free") + "/", model=model)
    flow, free = frames_of(tmp_path / "flow"), frames_of(tmp_path / "free")
    a_flow, a_free = added_amount(inputs, flow), added_amount(inputs, free)
    assert 0.5 < a_flow / a_free < 2.0  # comparable amounts of dream
    # relative flicker: 0 = the detail moves with the scene, ~2 = new detail every frame
    assert detail_flicker(inputs, flow, relative=True) < 0.5 * detail_flicker(inputs, free, relative=True)


def test_scene_cut_starts_a_fresh_dream(model, clips, tmp_path):
    messages = []
    result = pipeline.render_video(small(), clips["cut"], str(tmp_path / "flow") + "/",
                                   pipeline.Progress(info=messages.append), model=model)
    assert result.cuts == [4]
    assert "scene cut at frame 4" in messages
    pipeline.render_video(small(video__no_flow=True), clips["cut"], str(tmp_path / "free") + "/", model=model)
    flow, free = frames_of(tmp_path / "flow"), frames_of(tmp_path / "free")
    # frame 4 is a full dream of its input alone, with its own seed: identical to the
    # independent render's frame 4, so nothing of shot 1 leaks in
    assert np.array_equal(flow[4], free[4])
    # while frames inside a shot do carry the previous dream
    assert not np.array_equal(flow[5], free[5])


def test_added_amount_stays_in_a_band_along_a_clip(model, clips, tmp_path):
    added = []
    pipeline.render_video(small(dream__iterations=4), clips["long"], str(tmp_path / "o") + "/",
                          pipeline.Progress(frame=lambda k, s: added.append(s["amount"])), model=model)
    assert len(added) == 20
    first = added[0]
    for a in added[-5:]:  # neither runs away nor dies out
        assert 0.5 * first < a < 2.0 * first, added


def test_decode_and_flow_run_ahead_and_frames_are_written_behind_in_other_threads(model, clips, tmp_path,
                                                                                    monkeypatch):
    import threading

    from dreamvid.motion import flow as flow_mod

    flow_ready = threading.Event()
    motion_threads, store_threads, waited = set(), [], []
    real_motion, real_dream, real_save = flow_mod.motion, Dreamer.dream, Work.save

    def motion(*args, **kwargs):
        motion_threads.add(threading.current_thread().name)
        flow_ready.set()
        return real_motion(*args, **kwargs)

    def dream(self, image, **kwargs):
        if not waited:  # frame 0: the flow from frame 0 to 1 must arrive while this dream runs
            waited.append(flow_ready.wait(timeout=60))
        return real_dream(self, image, **kwargs)

    def save(self, k, frame):
        store_threads.append(threading.current_thread().name)
        return real_save(self, k, frame)

    monkeypatch.setattr(flow_mod, "motion", motion)
    monkeypatch.setattr(Dreamer, "dream", dream)
    monkeypatch.setattr(Work, "save", save)
    result = pipeline.render_video(small(), clips["pan"], str(tmp_path / "o") + "/", model=model)
    assert waited == [True]  # a serial loop would compute that flow only after the dream
    assert motion_threads and all(n.startswith("dreamvid-motion") for n in motion_threads)  # the flow pool
    assert len(store_threads) == 10 and all(n.startswith("dreamvid-store") for n in store_threads)  # the store pool
    assert len(frames_of(tmp_path / "o")) == result.frames == 10
    assert {"decode", "flow", "dream", "store", "encode", "wait"} <= set(result.stages)
    assert all(v >= 0 for v in result.stages.values()) and result.stages["dream"] > 0


def _on_device(monkeypatch, chain: bool) -> None:
    """Make every Dreamer work as on a GPU: each frame's start made on the device
    (carry_on_device) and, with `chain`, the chain of frames kept there (chain_on_device)."""
    init = Dreamer.__init__

    def on_device(self, *a, **k):
        init(self, *a, **k)
        self.carry_on_device, self.chain_on_device = True, chain

    monkeypatch.setattr(Dreamer, "__init__", on_device)


@pytest.mark.parametrize("chain", [False, True], ids=["carry", "chain"])
def test_a_video_carried_on_the_device_matches_the_host_carry(model, clips, tmp_path, monkeypatch, chain):
    """A GPU makes each frame's start on the device (Dreamer.carry_on_device) and keeps the
    chain of frames there (chain_on_device: amounts and shares as device values, each frame
    fetched once the next is queued): the same frames as the host's chain, to rounding."""
    host = pipeline.render_video(small(), clips["pan"], str(tmp_path / "host") + "/", model=model)
    _on_device(monkeypatch, chain)
    seen = []
    dev = pipeline.render_video(small(), clips["pan"], str(tmp_path / "dev") + "/",
                                pipeline.Progress(frame=lambda k, stats: seen.append((k, stats))), model=model)
    a, b = frames_of(tmp_path / "host"), frames_of(tmp_path / "dev")
    assert len(a) == len(b) == host.frames == dev.frames == 10
    np.testing.assert_array_equal(a[0], b[0])  # frame 0 is dreamed from the input alone
    diffs = [amount(x, y) for x, y in zip(a[1:], b[1:])]
    assert max(diffs) < 0.5  # the same chain: what differs is the warp's rounding
    assert amount(a[-1], frames_of(tmp_path / "host")[1]) > 1.0  # and the frames do differ from each other
    # every frame reported once, in order, with the amount it added and the share it carried as numbers
    assert [k for k, _ in seen] == list(range(10))
    for (k, stats), _frame in zip(seen, b):
        assert isinstance(stats["amount"], float) and isinstance(stats["carried"], float)
        assert stats["amount"] > 1.0 and (stats["carried"] == 0.0) == (k == 0)
        # at most a touch-up's share (float32 on the device)
        assert 0.0 < stats["carried"] <= touch_blend(small().video.blend) + 1e-6 or k == 0


def test_a_chain_kept_on_the_device_resumes_to_the_same_frames(model, clips, tmp_path, monkeypatch):
    """Stopped while frame 3 is handed on, frame 4 queued behind it (the device chain hands frame
    k on once k + 1 is queued): frames 0-3 are kept and frame 4, already queued, is fetched and
    kept too (chain.Chain.flush on the way out), and the resumed render's frames equal an
    uninterrupted one's, byte for byte (the amounts of stored frames are measured on the
    device, as those of frames just dreamed)."""
    _on_device(monkeypatch, chain=True)
    out, whole = str(tmp_path / "resumed") + "/", str(tmp_path / "whole") + "/"
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(small(), clips["pan"], out, pipeline.Progress(frame=_stop_at(3)), model=model)
    assert len(glob.glob(os.path.join(pipeline.work_folder(out), "frames", "*.png"))) == 5
    result = pipeline.render_video(small(), clips["pan"], out, model=model)
    assert result.resumed_from == 5 and result.frames == 10
    pipeline.render_video(small(), clips["pan"], whole, model=model)
    resumed, uninterrupted = frames_of(out), frames_of(whole)
    assert len(resumed) == len(uninterrupted) == 10
    assert all(np.array_equal(x, y) for x, y in zip(resumed, uninterrupted))


def test_motion_of_several_frame_pairs_is_computed_at_once_and_taken_in_order(model, clips, tmp_path,
                                                                            monkeypatch):
    import threading

    from dreamvid.motion import flow as flow_mod

    real_motion = flow_mod.motion
    gate = threading.Barrier(3, timeout=60)  # passes only when 3 motions run at the same time
    lock, calls, running, most = threading.Lock(), [], [0], [0]

    def motion(prev, cur, *args):
        with lock:
            calls.append(len(calls))
            first_three = len(calls) <= 3
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            if first_three:
                gate.wait()
            return real_motion(prev, cur, *args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(pipeline, "pool_size", lambda: 3)
    monkeypatch.setattr(flow_mod, "motion", motion)
    pooled = pipeline.render_video(small(), clips["cut"], str(tmp_path / "pool") + "/", model=model)
    assert len(calls) == 6 and most[0] == 3  # pairs 1-3, 5-7 (4 is a cut); never more than 3 at once
    monkeypatch.setattr(pipeline, "pool_size", lambda: 1)
    monkeypatch.setattr(flow_mod, "motion", real_motion)
    serial = pipeline.render_video(small(), clips["cut"], str(tmp_path / "one") + "/", model=model)
    assert pooled.cuts == serial.cuts == [4]
    a, b = frames_of(tmp_path / "pool"), frames_of(tmp_path / "one")
    assert len(a) == len(b) == 8 and all(np.array_equal(x, y) for x, y in zip(a, b))  # same frames, in order


def test_video_dream_schedules_change_the_dream_where_their_keyframes_say(model, clips, tmp_path):
    added = {}
    progress = pipeline.Progress(frame=lambda k, s: added.__setitem__(k, s["amount"]))
    # blend 0: each frame starts from its own input, so a frame's amount is what its steps add;
    # no steps on frames 1-2, then 3 a octave; the step size is 4x from frame 6 on
    # (every octave of every frame, next_skip 0: the schedules' own octaves and steps, no touch-up)
    cfg = small(video__blend=0.0, video__iterations="0:(0), 2:(0), 3:(3)", video__step="0:(1.0), 5:(1.0), 6:(4.0)",
                video__octaves="0:(2), 9:(1)", video__next_skip=0)
    out = str(tmp_path / "o") + "/"
    pipeline.render_video(cfg, clips["pan"], out, progress, model=model)
    assert added[0] > 1.0  # frame 0: a full dream
    assert added[1] < 0.6 and added[2] < 0.6  # nothing but the input
    base = max(added[3], added[4], added[5])
    assert min(added[3], added[4], added[5]) > 1.0
    assert all(added[k] > 1.5 * base for k in (6, 7, 8)), added  # four times the step, more added
    assert added[5] < 0.8 * min(added[3], added[4])  # octaves 2 -> 1 over frames 0-9: one octave from frame 5 on
    record = json.loads(Path(pipeline.record_path(out)).read_text(encoding="utf-8"))["settings"]
    assert record["video"]["step"] == "0:(1.0), 5:(1.0), 6:(4.0)" and record["zoom"] == {"interpolation": "linear"}
    # resumable: an interrupted render continues to the same frames
    part = str(tmp_path / "part") + "/"
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(cfg, clips["pan"], part, pipeline.Progress(frame=_stop_at(4)), model=model)
    assert pipeline.render_video(cfg, clips["pan"], part, model=model).resumed_from == 5
    a, b = frames_of(out), frames_of(part)
    assert len(a) == len(b) == 10 and all(np.array_equal(x, y) for x, y in zip(a, b))
    # checked before frame 0: nothing is dreamed or left behind
    bad = str(tmp_path / "bad") + "/"
    with pytest.raises(ConfigError, match="step schedule must stay within 0.0001..100, got 500 at frame 40"):
        pipeline.render_video(small(video__step="0:(1.0), 40:(500)"), clips["pan"], bad, model=model)
    assert not os.path.exists(bad) and not os.path.exists(pipeline.work_folder(bad))


# ----------------------------------------------------------------------------- resume


class Stop(KeyboardInterrupt):
    pass


def _stop_at(n):
    def frame(k, stats):
        if k == n:
            raise Stop
    return frame


def test_interrupted_render_resumes_to_the_same_frames(model, clips, tmp_path):
    out = str(tmp_path / "resumed") + "/"
    cfg = small(dream__seed=None)  # the base seed is drawn once and kept in the work folder
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(cfg, clips["pan"], out, pipeline.Progress(frame=_stop_at(3)), model=model)
    work = pipeline.work_folder(out)
    assert not os.path.exists(out)  # no final output from a broken run
    assert len(glob.glob(os.path.join(work, "frames", "*.png"))) == 4  # frames 0-3 kept
    state = json.loads(Path(os.path.join(work, "state.json")).read_text())
    messages = []
    result = pipeline.render_video(cfg, clips["pan"], out, pipeline.Progress(info=messages.append), model=model)
    assert result.resumed_from == 4 and result.frames == 10
    assert any("resuming from frame 4" in m for m in messages)
    assert not os.path.exists(work)
    whole = str(tmp_path / "whole") + "/"
    pipeline.render_video(small(dream__seed=state["base_seed"]), clips["pan"], whole, model=model)
    resumed, uninterrupted = frames_of(out), frames_of(whole)
    assert len(resumed) == len(uninterrupted) == 10
    assert all(np.array_equal(a, b) for a, b in zip(resumed, uninterrupted))


def test_resume_refuses_other_settings_and_restart_discards(model, clips, tmp_path):
    out = str(tmp_path / "o") + "/"
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(small(), clips["pan"], out, pipeline.Progress(frame=_stop_at(1)), model=model)
    with pytest.raises(ResumeError, match="other settings.*video.blend.*--restart"):
        pipeline.render_video(small(video__blend=0.5), clips["pan"], out, model=model)
    with pytest.raises(ResumeError, match="another input"):
        pipeline.render_video(small(), clips["cut"], out, model=model)
    # encoder-only settings may change on a resume
    result = pipeline.render_video(small(output__crf=30, output__keep_frames=True), clips["pan"], out, model=model)
    assert result.resumed_from == 2 and os.path.isdir(pipeline.work_folder(out))
    fresh = pipeline.render_video(small(video__blend=0.5, output__restart=True), clips["pan"],
                                  str(tmp_path / "o2") + "/", model=model)
    assert fresh.resumed_from == 0
    os.rename(str(tmp_path / "o"), str(tmp_path / "old"))
    again = pipeline.render_video(small(video__blend=0.5, output__restart=True), clips["pan"], out, model=model)
    assert again.resumed_from == 0 and again.frames == 10 and not os.path.exists(pipeline.work_folder(out))


# ----------------------------------------------------------------------------- zoom


@pytest.mark.parametrize("zoom, expected", [("1.05", [1.05] * 4),
                                            ("0:(1.04), 2:(1.04), 4:(1.10)", [1.04, 1.04, 1.07, 1.10])])
def test_zoom_without_dreaming_zooms_as_the_schedule_says(model, tmp_path, zoom, expected):
    cfg = small(dream__iterations=0, video__iterations_next=0, zoom__init="noise", zoom__frames=5,
                zoom__zoom=zoom, output__width=160, output__fps=30.0)
    result = pipeline.render_zoom(cfg, None, str(tmp_path / "z") + "/", model=model)
    frames = frames_of(tmp_path / "z")
    assert result.frames == len(frames) == 5 and result.fps == 30
    assert frames[0].shape == (90, 160, 3)  # 16:9 from --width; smaller frames upset estimate_zoom
    for k, (a, b) in enumerate(zip(frames, frames[1:]), start=1):  # frame k is frame k-1 zoomed by zoom(k)
        scale, angle = estimate_zoom(a, b)
        assert scale == pytest.approx(expected[k - 1], abs=0.01) and abs(angle) < 1.0, (k, scale)


def test_zoom_dreams_resumes_exactly_and_keeps_the_rate(model, tmp_path):
    image = tmp_path / "start.png"
    cv2.imwrite(str(image), cv2.cvtColor(tinted_texture(60, 80, seed=3, tint=(1.0, 0.9, 0.7)), cv2.COLOR_RGB2BGR))
    cfg = small(zoom__frames=6, zoom__zoom="0:(1.03), 5:(1.06)", zoom__rotate="1",
                dream__layers="0:(c2), 5:(c3)")  # a layer schedule cross-fades the objective
    out = str(tmp_path / "z.mp4")
    result = pipeline.render_zoom(cfg, str(image), out, model=model)
    probe = probe_video(out)
    assert probe["n_frames"] == result.frames == 6 and probe["fps"] == result.fps == 25
    assert (probe["width"], probe["height"]) == (80, 60)
    whole, part = str(tmp_path / "whole") + "/", str(tmp_path / "part") + "/"
    pipeline.render_zoom(cfg, str(image), whole, model=model)
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_zoom(cfg, str(image), part, pipeline.Progress(frame=_stop_at(2)), model=model)
    assert pipeline.render_zoom(cfg, str(image), part, model=model).resumed_from == 3
    a, b = frames_of(whole), frames_of(part)
    assert len(a) == len(b) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert amount(a[1], a[0]) > 1.0  # it moved and dreamed


def test_zoom_dream_schedules_change_the_dream_where_their_keyframes_say(model, tmp_path):
    image = tmp_path / "start.png"
    cv2.imwrite(str(image), cv2.cvtColor(tinted_texture(60, 80, seed=6, tint=(0.9, 1.0, 0.8)), cv2.COLOR_RGB2BGR))
    added = {}
    progress = pipeline.Progress(frame=lambda k, s: added.__setitem__(k, s["amount"]))
    # no steps on frames 1-2, then 4 steps a octave; the step size doubles from frame 4 on
    cfg = small(zoom__frames=6, zoom__zoom="1.02", zoom__color_match=0.0, zoom__iterations="0:(0), 2:(0), 3:(4)",
                zoom__step="0:(1.5), 3:(1.5), 4:(3.0)")
    pipeline.render_zoom(cfg, str(image), str(tmp_path / "z") + "/", progress, model=model)
    assert added[1] < 0.6 and added[2] < 0.6  # only the uint8 rounding of the moved frame
    assert added[3] > 2.0
    assert added[4] > 1.5 * added[3] and added[5] > 1.5 * added[3]  # twice the step, more added


# ----------------------------------------------------------------------------- still


def test_image_is_dreamed_and_written_atomically(model, tmp_path):
    src = tmp_path / "in.png"
    img = tinted_texture(56, 72, seed=4, tint=(0.9, 0.9, 1.0))
    cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "dream.jpg"
    result = pipeline.render_image(small(dream__iterations=5), str(src), str(out), model=model)
    assert result.path == str(out) and result.frames == 1
    assert sorted(os.listdir(tmp_path)) == ["dream.jpg", "dream.jpg.json", "in.png"]  # no temporary left
    dreamed = read_image(str(out))
    assert dreamed.shape == img.shape
    dreamer = Dreamer(model, parse("c3"), small().dream)
    assert dreamer.objective_value(dreamed.astype(np.float32)) > 1.2 * dreamer.objective_value(img.astype(np.float32))
    with pytest.raises(OutputError, match="is the input"):
        pipeline.render_image(small(), str(src), str(src), model=model)
    with pytest.raises(OutputError, match="does not exist"):
        pipeline.render_image(small(), str(src), str(tmp_path / "nope" / "x.png"), model=model)


# ----------------------------------------------------------------------------- keep colors


def chroma_and_luma_change(out, original):
    """Mean |difference| of the chroma (Cr, Cb) and of the luma (Y) between two RGB uint8 frames."""
    a, b = (cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb).astype(np.float32) for x in (out, original))
    d = np.abs(a - b).reshape(-1, 3).mean(axis=0)
    return float(d[1:].mean()), float(d[0])


def test_keep_colors_keeps_the_inputs_palette_in_stills_videos_and_zooms(model, clips, tmp_path):
    src = tmp_path / "in.png"
    img = tinted_texture(56, 72, seed=8, tint=(1.0, 0.7, 0.5))
    cv2.imwrite(str(src), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    changes = {}
    for keep in (False, True):
        cfg = small(dream__iterations=5, dream__step=3.0, dream__keep_colors=keep)
        pipeline.render_image(cfg, str(src), str(tmp_path / f"s{keep}.png"), model=model)
        changes["image", keep] = chroma_and_luma_change(read_image(str(tmp_path / f"s{keep}.png")), img)
        pipeline.render_zoom(small(dream__step=3.0, dream__keep_colors=keep, zoom__frames=2), str(src),
                             str(tmp_path / f"z{keep}") + "/", model=model)
        # frame 0's input: the image
        changes["zoom", keep] = chroma_and_luma_change(frames_of(tmp_path / f"z{keep}")[0], img)
        pipeline.render_video(small(dream__step=3.0, dream__keep_colors=keep), clips["cut"],
                              str(tmp_path / f"v{keep}") + "/", model=model)
        pairs = zip(frames_of(tmp_path / f"v{keep}"), open_source(clips["cut"]))
        per_frame = np.array([chroma_and_luma_change(out, frame) for out, frame in pairs])
        changes["video", keep] = per_frame[:, 0].max(), per_frame[:, 1].min()  # the worst frame of each
    for job in ("image", "zoom", "video"):
        (chroma, _light), (kept_chroma, kept_light) = changes[job, False], changes[job, True]
        assert kept_chroma < 1.0 < chroma, job  # the palette stays within rounding (and clipping)
        assert kept_light > 2.0, job  # while the dream still changed the light and shapes
    record = json.loads(Path(tmp_path / "vTrue.json").read_text(encoding="utf-8"))
    assert record["settings"]["dream"]["keep_colors"] is True


# ----------------------------------------------------------------------------- records


def test_each_output_records_the_settings_that_reproduce_it(model, clips, tmp_path):
    out = str(tmp_path / "first") + "/"
    cfg = small(dream__seed=None, video__blend=0.7)  # a drawn seed and a changed setting
    with pytest.raises(KeyboardInterrupt):
        pipeline.render_video(cfg, clips["pan"], out, pipeline.Progress(frame=_stop_at(2)), model=model)
    assert not os.path.exists(pipeline.record_path(out))  # no record for an unfinished output
    pipeline.render_video(cfg, clips["pan"], out, model=model)
    record = json.loads(Path(pipeline.record_path(out)).read_text(encoding="utf-8"))
    assert pipeline.record_path(out) == str(tmp_path / "first.json")
    assert record["job"] == "video" and record["frames"] == 10 and record["fps"] == "30000/1001"
    assert record["input"] == os.path.abspath(clips["pan"]) and record["objective"] == "c3"
    assert isinstance(record["settings"]["dream"]["seed"], int) and record["settings"]["video"]["blend"] == 0.7
    # the record is a preset: the same frames again, seed included
    again = str(tmp_path / "again") + "/"
    values, _ = load_preset(pipeline.record_path(out))
    pipeline.render_video(build_config(values), clips["pan"], again, model=model)
    a, b = frames_of(out), frames_of(again)
    assert len(a) == len(b) == 10 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_zoom_and_still_records_name_their_job_and_seed(model, tmp_path):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.cvtColor(tinted_texture(48, 64, seed=5, tint=(1.0, 1.0, 1.0)), cv2.COLOR_RGB2BGR))
    pipeline.render_zoom(small(zoom__frames=2, zoom__zoom="1.04"), str(src), str(tmp_path / "z.mp4"), model=model)
    pipeline.render_image(small(dream__seed=None), str(src), str(tmp_path / "s.png"), model=model)
    zoom = json.loads(Path(tmp_path / "z.mp4.json").read_text(encoding="utf-8"))
    still = json.loads(Path(tmp_path / "s.png.json").read_text(encoding="utf-8"))
    assert zoom["job"] == "zoom" and zoom["settings"]["zoom"]["zoom"] == "1.04" and zoom["frames"] == 2
    assert still["job"] == "image" and "zoom" not in still["settings"]
    values, _ = load_preset(str(tmp_path / "s.png.json"))
    pipeline.render_image(build_config(values), str(src), str(tmp_path / "s2.png"), model=model)
    assert np.array_equal(read_image(str(tmp_path / "s.png")), read_image(str(tmp_path / "s2.png")))


def test_a_touch_up_takes_fewer_longer_steps_and_its_full_work_where_the_picture_is_new():
    """chain.touch_up: 3 of 5 steps (TOUCH_STEPS), each TOUCH_STEP longer; its work map 1 where
    the occlusion mask of the motion says the picture is new (revealed: mask 0), TOUCH_WORK where
    the carried dream lies; no steps stay none. touch_blend keeps more of the carried dream."""
    from dreamvid.config.settings import TOUCH_STEP, TOUCH_WORK
    from dreamvid.motion.flow import Motion
    from dreamvid.render.chain import touch_up

    occlusion = np.ones((6, 8), np.float32)
    occlusion[:, :3] = 0.0  # the left columns revealed
    steps, step, work = touch_up(5, 1.5, Motion(flow=np.zeros((6, 8, 2), np.float32), mask=occlusion))
    assert steps == 3 and step == pytest.approx(1.5 * TOUCH_STEP) and step > 1.5
    np.testing.assert_allclose(work[:, :3], 1.0)
    np.testing.assert_allclose(work[:, 3:], TOUCH_WORK)
    assert touch_up(1, 1.5, None)[0] == 1 and touch_up(0, 1.5, None)[0] == 0 and touch_up(1, 1.5, None)[2] is None
    assert 0.98 < touch_blend(0.9) < 1.0 and touch_blend(1.0) == 1.0
    assert touch_blend(0.0) == 0.0  # nothing carried stays nothing
