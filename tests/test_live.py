"""Dreaming live (dreamvid.live.show, livesources, livesinks): a real clip sent over UDP on the loopback
by ffmpeg at 25 frames/s, and the same clip as a file played at its own rate, dreamed live with
the preview preset (vgg16-hed, bundled: offline) at 320x180; the recording and a UDP sink read
back; the window under Xvfb with real key presses (xdotool); commands on standard input; the
governor.

samples/pan.mp4 (320x180, a pan with a cut) is the clip (DREAMVID_LIVE_CLIP=another, e.g. real
street footage cropped to 320x180, for the README's figures). The two shows (a UDP stream, a
file) last LIVE_SECONDS each (the issue's 20 s; DREAMVID_LIVE_SECONDS=8 for a quicker look);
latency is compared over the first and last WINDOW seconds of a run. They run on one backend
(`one_pass`: CI's TensorFlow pass), as every live run here does but one: they measure the live
loop, the sources and the sinks, one code on every backend (and JAX on CPU dreams the preview
at 320x180 in about 4 s a frame, a show of a frame or two); test_a_short_show_on_this_backend
dreams a small show live on whichever backend the pass runs.

No verdict here depends on how fast the machine dreams (a 2-core Xeon with AMX dreams the
preview about 4x faster than a 2-core EPYC without it, and one core half that again): the UDP
stream is a single shot that plays back and forth (`long_shot`: no cut however few frames a
show dreams of it), the flicker is compared on the very inputs a show dreamed, shows that count
frames end after a number of dreams (`frames=`) rather than seconds, and the tests about the
chain rather than the clock take a file at the dream's pace (`pace="dream"`: every frame in
turn, the same frames on any machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import dreamvid
from dreamvid.core.ffmpeg import ffmpeg_exe
from dreamvid.live.show import Commands, Governor
from dreamvid.live.sources import open_live_source
from dreamvid.measure.metrics import detail_flicker
from dreamvid.media import audio
from dreamvid.media.sources import open_source, probe_video

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples", "pan.mp4")
CLIP = os.environ.get("DREAMVID_LIVE_CLIP") or SAMPLE
LIVE_SECONDS = float(os.environ.get("DREAMVID_LIVE_SECONDS", "20"))
WINDOW = min(5.0, LIVE_SECONDS / 3)
FPS_IN = 25
LIVE = {"preset": "preview", "seed": 1}  # vgg16-hed block3_conv3, 2 octaves of 4 steps, 2 after, 320 wide
one_pass = pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                              reason="live shows run in the TensorFlow pass (the live loop, sources and sinks are one "
                                     "code for every backend; JAX on CPU dreams 320x180 in seconds a frame); "
                                     "test_a_short_show_on_this_backend dreams live here")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_udp(clip, sound=False):
    """ffmpeg sending `clip` over and over to udp://127.0.0.1:PORT at 25 frames/s, 320x180 H.264
    (a key frame a second; with `sound`, its AAC track too), in MPEG-TS, in real time (-re)."""
    port = free_port()
    audio_args = ["-c:a", "aac", "-b:a", "64k"] if sound else ["-an"]
    proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                             "-stream_loop", "-1", "-i", clip, "-vf", "scale=320:180", "-r", str(FPS_IN), *audio_args,
                             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS_IN),
                             "-bf", "0", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return f"udp://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def long_shot(tmp_path_factory):
    """One shot that never cuts, however it is sampled: the clip's first shot (frames 0-57 of the
    sample's pan) played forwards then backwards, 3.9 s that loop seamlessly, 320x180."""
    if CLIP != SAMPLE:
        return CLIP
    path = tmp_path_factory.mktemp("live") / "pingpong.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", SAMPLE, "-filter_complex",
                    "[0:v]trim=end_frame=58,setpts=PTS-STARTPTS,split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1[v]",
                    "-map", "[v]", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return str(path)


@pytest.fixture
def udp_sender(long_shot):
    url, proc = send_udp(long_shot)
    yield url
    proc.kill()
    proc.wait()


@pytest.fixture
def udp_sender_with_sound(tmp_path):
    """The sample's pictures sent with a sound that is silent for 2 s, then a tone for 2 s, over
    and over (the 4 s clip looped): a level that falls to nothing and rises to the top."""
    clip = tmp_path / "gated.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", SAMPLE, "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=44100:duration=4,volume='if(lt(t,2),0,1)':eval=frame",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(clip)],
                   check=True, stdin=subprocess.DEVNULL)
    url, proc = send_udp(str(clip), sound=True)
    yield url
    proc.kill()
    proc.wait()


class UdpReceiver:
    """A UDP socket on a free loopback port, writing every datagram that arrives into `path` as it
    comes (the MPEG-TS packets a stream sink sends, which ffmpeg then reads back as a file)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        with open(self.path, "wb") as f:
            while not self._stop.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                f.write(data)
                self.received += len(data)

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def frames_of(path):
    with open_source(str(path)) as src:
        return [f.copy() for f in src]


def live_run(source, outputs, **options):
    """render_live with each dreamed frame's (input, dream, stats) kept."""
    seen = []
    result = dreamvid.render_live(source, outputs, on_frame=lambda i, o, s: seen.append((i.copy(), o.copy(), s)),
                                  **{**LIVE, "seconds": LIVE_SECONDS, **options})
    return result, seen


def never_behind(result, frame_time: float) -> dict:
    """The issue's rule, over the first and the last WINDOW seconds of the run: no higher at the
    end than at the start plus one frame time. It is asserted on what falling behind would grow,
    the wait from a frame's arrival to the start of its dream (a queue would make it climb by a
    dream's time with every frame), and that wait stays within about a frame's time throughout.
    The latency (that wait plus the dream's own time) is returned with it: on this machine's two
    shared cores the dream's own time swings with the other processes' load, so the latency's
    rule is measured (README) rather than asserted."""
    t = np.array([f[0] for f in result.frames])
    lat = np.array([f[1] for f in result.frames])
    waited = np.array([f[5] for f in result.frames])
    first, last = t <= t[0] + WINDOW, t >= t[-1] - WINDOW
    w0, w1 = float(np.median(waited[first])), float(np.median(waited[last]))
    assert w1 <= w0 + frame_time, (w0, w1)
    assert float(np.median(waited)) <= frame_time + 0.02, np.median(waited)
    l0, l1 = float(np.median(lat[first])), float(np.median(lat[last]))
    assert l1 <= 3 * l0 + frame_time, (l0, l1)  # a queue would add seconds over the run; the load swings less
    return {"wait_first": w0, "wait_last": w1, "latency_first": float(np.median(lat[first])),
            "latency_last": float(np.median(lat[last]))}


def shows_the_dream(shown, dream_in, dream_out) -> tuple[float, float, float]:
    """How far a frame read back is from a dream and from its input, and how much of the dream's
    detail (dream - input) it carries: the cosine between that detail and (shown - input), near 1
    where the dream was shown (H.264 noise aside), near 0 where the input was. On real footage a
    preview dream adds a few levels a pixel, about the codec's error, so the distances alone
    cannot tell the two apart; the detail's direction can."""
    shown, dream_in, dream_out = (np.asarray(a, np.float32) for a in (shown, dream_in, dream_out))
    detail, got = (dream_out - dream_in).ravel(), (shown - dream_in).ravel()
    cos = float(detail @ got / (np.linalg.norm(detail) * np.linalg.norm(got) + 1e-9))
    return float(np.abs(shown - dream_out).mean()), float(np.abs(shown - dream_in).mean()), cos


def assert_dreamed_recording(path, seen, seconds, fps):
    """`path` plays (ffmpeg decodes it whole), lasts about the run at `fps`, and its last frame is
    the last dream (within the codec's error: H.264 on dream detail), not its input."""
    info = probe_video(str(path))
    assert info["width"] == 320 and info["height"] == 180
    assert 0.6 * seconds * fps <= info["n_frames"] <= 1.3 * seconds * fps, info
    to_dream, to_input, cos = shows_the_dream(frames_of(path)[-1], seen[-1][0], seen[-1][1])
    assert to_dream < 6.0 and to_dream < to_input and cos > 0.5, (to_dream, to_input, cos)  # the dream, not the input
    assert np.abs(seen[-1][1].astype(np.float32) - seen[-1][0]).mean() > 2.0  # it is dreamed


def assert_dreamed_stream(path, seen):
    """The MPEG-TS a UDP sink sent (caught in `path`) decodes with ffmpeg, and what went out is the
    dream (one of the last dreams shown, within H.264's error), not its input."""
    sent = frames_of(path)
    assert len(sent) >= FPS_IN * 1
    to_dream, to_input, cos = min(shows_the_dream(sent[-1], i, o) for i, o, _ in seen[-12:])  # the nearest dream
    assert to_dream < 6.0 and to_dream < to_input and cos > 0.5, (to_dream, to_input, cos)


def against_alone(seen, fps, most: int = 24) -> tuple[float, float, int]:
    """The relative detail flicker of a show's dreams against the same inputs dreamed each alone
    (no flow), over its longest run of frames without a cut (up to `most` of them): (chained,
    alone, frames compared)."""
    starts = [n for n, (_, _, st) in enumerate(seen) if st["cut"] or n == 0] + [len(seen)]
    a, b = max(zip(starts, starts[1:]), key=lambda r: r[1] - r[0])
    pairs = [(i, o) for i, o, _ in seen[a:b][:most]]
    assert len(pairs) >= 3, f"only {len(pairs)} frames dreamed in the show"
    with dreamvid.VideoDreamer(**LIVE, no_flow=True, fps=fps) as alone:
        alone_out = [alone.dream(i) for i, _ in pairs]
    inputs = [i for i, _ in pairs]
    return (detail_flicker(inputs, [o for _, o in pairs], relative=True),
            detail_flicker(inputs, alone_out, relative=True), len(pairs))


@one_pass
def test_a_udp_stream_dreamed_live_never_falls_behind(udp_sender, tmp_path):
    rec = tmp_path / "show.mp4"
    receiver = UdpReceiver(tmp_path / "sent.ts")
    try:
        result, seen = live_run(udp_sender, [str(rec), receiver.url])
    finally:
        time.sleep(0.3)
        receiver.close()
    s = result.status
    rule = never_behind(result, 1 / FPS_IN)
    print(f"\nudp: {result.summary()}; in {s.fps_in:.1f} fps; "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in rule.items()))
    assert 20 <= s.fps_in <= 30  # the sender's 25 frames/s arrive
    assert s.dreamed + s.dropped - 1 <= s.received <= s.dreamed + s.dropped + 2  # every frame counted
    assert s.dropped > 0 or s.fps_out >= 0.9 * s.fps_in  # what the dream could not take was dropped
    assert result.outputs == [str(rec)]
    assert_dreamed_recording(rec, seen, s.seconds, FPS_IN)
    assert_dreamed_stream(tmp_path / "sent.ts", seen)  # the UDP sink, read back
    # one shot that plays back and forth (long_shot: a cut only where the stream's damage makes one),
    # the longest run of it dreamed again, each frame alone
    chained, independent, n = against_alone(seen, FPS_IN)
    print(f"udp: relative flicker {chained:.3f} chained vs {independent:.3f} alone over {n} frames")
    assert chained < 0.8 * independent
    with pytest.raises(dreamvid.InputError, match="has no sound track; audio:source"):
        open_live_source(udp_sender, sound_modes=("rms",))  # this stream is sent without its sound


@one_pass
def test_a_file_source_s_own_sound_drives_the_step(tmp_path):
    """step "audio:source:0.5:3": each frame dreamed takes the step the file's sound track gives
    at the frame it plays (audio.envelope over the sample's track, looped with it)."""
    looks = []
    _, seen = live_run(SAMPLE, [str(tmp_path / "s.mkv")], loop=True, step="audio:source:0.5:3", seconds=None,
                       frames=10, pace="dream", progress=lambda st: looks.append(st.look))
    assert set(looks) == {LIVE["preset"]}, set(looks)  # the look's own name, not the sound setting's
    fps = probe_video(SAMPLE)["fps"]
    env = audio.envelope(audio.decode(SAMPLE), audio.RATE, fps, frames=probe_video(SAMPLE)["n_frames"])
    got = np.array([st["step"] for _, _, st in seen])
    want = np.array([0.5 + 2.5 * env[st["index"] % len(env)] for _, _, st in seen])
    assert np.allclose(got, want, atol=1e-9)
    # every frame in turn (pace "dream"): the step swells with the sound from the file's first frames on
    assert [st["index"] for _, _, st in seen] == list(range(1, 11))
    assert len(set(np.round(got, 6).tolist())) > 3 and got.max() - got.min() > 0.01, got


@one_pass
def test_a_stream_s_own_sound_heard_live_drives_the_step(udp_sender_with_sound, tmp_path):
    """The same over UDP with a sound in the stream that is silent for 2 s, then loud for 2 s: the
    step follows the sound heard as it arrives, down near 0.5 in the silence and up near 3 with the
    tone. The show runs until it has dreamed in both (whatever the machine's speed: a frame every
    few seconds still lands in each half sooner or later), 120 s only if the step never moves."""
    seen, stop = [], threading.Event()

    def on_frame(i, o, st):
        seen.append(st["step"])
        if len(seen) >= 4 and min(seen) < 1.0 and max(seen) > 2.5:
            stop.set()

    dreamvid.render_live(udp_sender_with_sound, [str(tmp_path / "s.mkv")], on_frame=on_frame, cancel=stop,
                         **{**LIVE, "seconds": 120, "step": "audio:source:0.5:3"})
    steps = np.array(seen)
    print(f"\nstream sound: steps {np.round(steps, 2).tolist()}")
    assert ((steps >= 0.5) & (steps <= 3.0)).all()
    assert steps.min() < 1.0 and steps.max() > 2.5, "the step did not follow the sound from silence to the tone"


@one_pass
def test_a_file_played_live_flickers_less_than_frames_dreamed_alone(tmp_path, long_shot):
    rec = tmp_path / "show.mkv"
    receiver = UdpReceiver(tmp_path / "sent.ts")
    try:
        result, seen = live_run(long_shot, [str(rec), receiver.url], loop=True)
    finally:
        time.sleep(0.3)
        receiver.close()
    fps = float(probe_video(long_shot)["fps"])
    rule = never_behind(result, 1 / fps)
    s = result.status
    assert 0.8 * fps <= s.fps_in <= 1.2 * fps
    assert s.dropped > 0 or s.fps_out >= 0.9 * s.fps_in  # what the dream could not take was dropped
    assert s.dreamed + s.dropped - 1 <= s.received <= s.dreamed + s.dropped + 2  # every frame counted
    assert_dreamed_recording(rec, seen, s.seconds, fps)
    assert_dreamed_stream(tmp_path / "sent.ts", seen)
    chained, independent, _ = against_alone(seen, fps)
    print(f"\nfile: {result.summary()}; relative flicker {chained:.3f} chained vs {independent:.3f} alone; "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in rule.items()))
    assert chained < 0.8 * independent


@one_pass
def test_the_live_chain_limits_the_carried_detail(tmp_path):
    """--carry-limit holds live as in a render (chain.Chain): carried detail limited to a twentieth
    of a fresh dream's amount leaves the next frames about what their own two steps add; with no
    limit they carry the whole dream on."""
    def amounts(limit):  # the same 8 frames of the sample's first shot, whatever the machine's speed
        _, seen = live_run(SAMPLE, [str(tmp_path / f"c{limit}.mkv")], pace="dream", octaves=1, seconds=None,
                           frames=8, carry_limit=limit)
        assert [st["index"] for _, _, st in seen] == list(range(1, 9))
        first = seen[0][2]["amount"]
        return first, np.mean([st["amount"] for _, _, st in seen[1:] if not st["cut"]])

    (_, limited), (fresh_free, free) = amounts(0.05), amounts(0.0)
    print(f"\ncarry limit live: next frames add {limited:.1f} limited, {free:.1f} free (fresh {fresh_free:.1f})")
    assert limited < 0.7 * free


@one_pass
def test_pause_holds_the_show_and_play_resumes_it(tmp_path):
    commands, counts, started = Commands(), [], threading.Event()

    def progress(s):
        counts.append((time.perf_counter(), s.dreamed, s.paused))
        started.set()

    def until(test, timeout=120.0):  # the show's own state, not the clock, says when to act
        t0 = time.perf_counter()
        while not (counts and test(counts[-1])) and time.perf_counter() - t0 < timeout:
            time.sleep(0.05)

    def operate():
        started.wait(120)
        until(lambda c: c[1] >= 1)
        commands.put("pause")
        until(lambda c: c[2])
        t_paused = time.perf_counter()
        until(lambda c: time.perf_counter() - t_paused > 2.0)  # two seconds paused, statuses coming
        commands.put(" ")  # the window's space bar
        until(lambda c: not c[2])
        held = counts[-1][1]
        until(lambda c: c[1] >= held + 3)
        commands.put("q")

    threading.Thread(target=operate, daemon=True).start()
    result = dreamvid.render_live(SAMPLE, [str(tmp_path / "p.mkv")], **LIVE, octaves=1, loop=True, seconds=600,
                                  commands=commands, progress=progress)
    paused = [n for _, n, p in counts if p]
    assert len(paused) >= 3 and max(paused) - min(paused) <= 1  # nothing dreamed while paused (one may finish)
    assert result.status.dreamed > max(paused) + 2  # play resumed it
    assert result.status.seconds < 590  # q ended it


def test_a_short_show_on_this_backend(tmp_path):
    """A few seconds of the file source dreamed live at 128 px on the pass's backend (JAX's in CI's
    second pass): dreams come out, every frame dreamed or dropped and counted (one that came during the
warm-up may be dropped once the show started), the recording plays."""
    rec = tmp_path / "short.mkv"
    result, seen = live_run(SAMPLE, [str(rec)], loop=True, width=128, octaves=1, seconds=300, frames=3)
    s = result.status
    print(f"\nshort show: {result.summary()}")
    assert s.dreamed == 3 and s.dreamed + s.dropped - 1 <= s.received <= s.dreamed + s.dropped + 2  # all counted
    info = probe_video(str(rec))
    assert (info["width"], info["height"]) == (128, 72) and info["n_frames"] >= 2
    change = [float(np.abs(o.astype(np.float32) - i).mean()) for i, o, _ in seen]
    # dreamed: the first frame in full, the next ones touch-ups of the carried dream (one step of
    # the preview's two here: less added each, more carried) that still change every pixel's level
    assert change[0] > 2.0 and min(change) > 1.0, change


def test_the_governor_lowers_steps_then_octaves_and_raises_them_again():
    g = Governor(10.0, (1, 6), (1, 3), hold=0)  # 0.1 s a frame
    for _ in range(20):
        g.update(0.4)  # far too slow
    assert (g.steps, g.octaves) == (1, 1)
    trace = []
    for _ in range(40):
        g.update(0.01)  # room to spare
        trace.append((g.steps, g.octaves))
    assert (g.steps, g.octaves) == (6, 3)
    assert trace.index((1, 3)) < trace.index((2, 3))  # the octaves come back first


@one_pass
def test_the_governor_holds_a_target_live(tmp_path):
    # the target: three times the rate this machine dreams at the most steps (measured here, now),
    # so the governor must lower them on any machine
    with dreamvid.VideoDreamer(**LIVE, iterations_next=6, fps=FPS_IN) as chain:
        frames = frames_of(SAMPLE)[:4]
        chain.dream(frames[0])
        chain.dream(frames[1])
        t0 = time.perf_counter()
        chain.dream(frames[2])
        chain.dream(frames[3])
        rate = 2 / (time.perf_counter() - t0)
    result, _ = live_run(CLIP, [str(tmp_path / "g.mp4")], fps=min(3 * rate, 1000), min_steps=1, max_steps=6,
                         iterations_next=6, loop=True, seconds=None, frames=12)
    steps = [f[3] for f in result.frames]
    print(f"\ngovernor: {result.summary()}")
    assert min(steps) < 6 and result.governor_changes >= 1  # it lowered the steps from the 6 asked
    assert "governor: steps" in result.summary()


@one_pass
def test_commands_on_standard_input_and_their_errors(tmp_path):
    """The CLI, as a show's operator uses it headless: commands on stdin, then quit; the
    snapshot written, the recording closed and playable, the summary printed."""
    rec = tmp_path / "cli.mp4"
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid.cli", "live", CLIP, "-o", str(rec), "--preset", "preview",
                             "--octaves", "1", "--loop", "--look", "block4_conv3", "--snapshots", str(tmp_path)],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        def feed():
            for line in ("stronger", "+", "weaker", "n", "bogus", "p", "more", "less", "[", "pause", "pause",
                         "snapshot", "reset", "quit"):
                proc.stdin.write(line + "\n")
                proc.stdin.flush()
                time.sleep(0.5)
        # the commands start once the show does (after loading and compiling)
        err = ""
        while "show started" not in err and proc.poll() is None:
            err += proc.stderr.readline()
        threading.Thread(target=feed, daemon=True).start()
        err += proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    for words in ("step x1.25", "step x1.56", "look: block4_conv3", "look: preview", "unknown live command 'bogus'",
                  "carry 0.95", "carry 0.85", "paused", "playing", "snapshot", "chain reset", "frames dreamed of",
                  "wrote"):
        assert words in err, (words, err)
    assert any(n.endswith(".png") for n in os.listdir(tmp_path))
    assert probe_video(str(rec))["n_frames"] > 0


@one_pass
def test_sigterm_ends_a_show_cleanly(tmp_path):
    rec = tmp_path / "term.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid.cli", "live", CLIP, "-o", str(rec), "--preset", "preview",
                             "--octaves", "1", "--loop", "--no-stdin"], stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, cwd=tmp_path)
    err = ""
    while "show started" not in err and proc.poll() is None:
        err += proc.stderr.readline()
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    err += proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert "frames dreamed of" in err
    assert probe_video(str(rec))["n_frames"] > 0  # closed: the final name exists and plays


def test_bad_sources_and_sinks_say_so_in_one_line(tmp_path, capsys):
    from dreamvid.cli import main

    assert main(["live", str(tmp_path / "nothing.mp4"), "-o", str(tmp_path / "x.mp4"), "--preset", "preview"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["live", "camera:x", "-o", "window"]) == 2
    assert "camera:N" in capsys.readouterr().err
    assert main(["live", CLIP, "-o", str(tmp_path / "x.avi"), "--preset", "preview"]) == 2
    assert "unknown output format '.avi'" in capsys.readouterr().err
    assert main(["live", CLIP, "-o", "x.mp4", "--min-octaves", "0"]) == 2
    assert "min_octaves must be between 1 and 12" in capsys.readouterr().err
    with pytest.raises(dreamvid.ConfigError, match="unknown live command"):
        Commands().put("louder")


def test_osc_addresses_and_their_refusals(monkeypatch, capsys):
    """--osc [HOST:]PORT: the loopback unless a host is named; anything else, or no python-osc, is
    one line naming the fix, before the framework starts (CLIP is never opened)."""
    from dreamvid.cli import main
    from dreamvid.live import osc

    assert osc.osc_address("9000") == ("127.0.0.1", 9000)
    assert osc.osc_address(9000) == ("127.0.0.1", 9000)
    assert osc.osc_address("0.0.0.0:9001") == ("0.0.0.0", 9001)
    assert osc.osc_address("[::1]:9002") == ("::1", 9002)
    for bad in ("", "x", "70000", "0", ":9000", "host:", "1.2.3.4:port"):
        with pytest.raises(dreamvid.ConfigError, match=r"--osc takes \[HOST:\]PORT"):
            osc.osc_address(bad)
    assert main(["live", "nothing.mp4", "-o", "x.mp4", "--osc", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--osc 9000" in err, err
    real = osc.importlib.util.find_spec
    monkeypatch.setattr(osc.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pythonosc" else real(name, *a))
    assert main(["live", "nothing.mp4", "-o", "x.mp4", "--osc", "9000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dreamvid[osc]'" in err, err


def test_osc_messages_become_commands_and_the_rest_status_lines():
    """OscControl alone (no show), fed by python-osc's client and a raw socket: typed arguments,
    buttons (a press acts, a release does not), and each thing it cannot take a line, in order."""
    pytest.importorskip("pythonosc", reason="python-osc is not installed (pip install 'dreamvid[osc]')")
    from pythonosc.udp_client import SimpleUDPClient

    from dreamvid.live.osc import OscControl

    commands = Commands()
    control = OscControl(free_port(), commands)
    try:
        port = control.address[1]
        client = SimpleUDPClient("127.0.0.1", port)
        for address, args in (("/dreamvid/pause", 1.0), ("/dreamvid/pause", 0.0), ("/dreamvid/look", "block4_conv3"),
                              ("/dreamvid/layer", 2.0), ("/dreamvid/carry", 0.5), ("/dreamvid/carry", 1.5),
                              ("/dreamvid/carry_limit", 2), ("/dreamvid/reset", []), ("/dreamvid/reset", "x")):
            client.send_message(address, args)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"#bundle\x00cut", ("127.0.0.1", port))  # looks like OSC, does not parse
        client.send_message("/dreamvid/quit", [])
        got, t0 = [], time.perf_counter()
        while ("quit", None) not in got and time.perf_counter() - t0 < 10:
            got += commands.take()
            time.sleep(0.02)
    finally:
        control.close()
    said = [v for k, v in got if k == "notice"]
    assert [x for x in got if x[0] != "notice"] == [("pause", None), ("look", "block4_conv3"), ("look", 2),
                                                    ("carry", 0.5), ("carry_limit", 2.0), ("reset", None),
                                                    ("quit", None)]
    assert said[0] == f"OSC: listening on udp 127.0.0.1:{port} for /dreamvid/..."
    assert "/dreamvid/carry 1.5 ignored: carry must be between 0 and 1" in said[1], said
    assert "/dreamvid/reset 'x' ignored" in said[2] and "a malformed OSC packet" in said[3], said
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy, \
            pytest.raises(dreamvid.ConfigError, match="cannot listen for OSC on 127.0.0.1"):
        busy.bind(("127.0.0.1", 0))
        OscControl(busy.getsockname()[1], Commands())


def test_a_fader_glides_to_its_value_over_a_few_frames():
    from dreamvid.live.show import Glide

    chain, sched = type("Chain", (), {"blend": 0.9})(), {"step": type("Step", (), {"factor": 1.0})()}
    glide, commands = Glide(), Commands()
    commands.set("strength", "3")
    commands.set("carry", 0.5)
    glide.targets.update(commands.take())
    path = []
    for _ in range(8):
        glide.step(chain, sched)
        path.append((sched["step"].factor, chain.blend))
    assert path[0] == (2.0, pytest.approx(0.7)) and path[1] == (2.5, pytest.approx(0.6))  # half the way each frame
    assert path[-1] == (3.0, 0.5) and glide.targets == {}  # there, and done
    for name, bad in (("strength", 0), ("carry", -0.1), ("carry_limit", "high"), ("look", 1.5), ("speed", 1)):
        with pytest.raises(dreamvid.ConfigError):
            commands.set(name, bad)


@one_pass
def test_a_real_osc_client_steers_a_running_show(tmp_path):
    """python-osc's SimpleUDPClient on the loopback, against a show of the sample's first shot at the
    dream's pace (the same frames on any machine): sent as the frames come out, a strength fader
    (/dreamvid/strength 3) glides the step to 3x over a few frames and the dream's amount follows,
    /dreamvid/reset starts a fresh shot (a cut), and a datagram that is no OSC, a wrong argument and an
    unknown address each get a line in the status while the show goes on to its last frame."""
    pytest.importorskip("pythonosc", reason="python-osc is not installed (pip install 'dreamvid[osc]')")
    from pythonosc.udp_client import SimpleUDPClient

    port = free_port()
    client = SimpleUDPClient("127.0.0.1", port)
    seen, notices, sent = [], [], {}

    def on_frame(_input, _dream, stats):  # the loop's own thread: the datagrams go out between two frames
        seen.append(stats)
        n = len(seen)
        if n == 5:
            client.send_message("/dreamvid/strength", 3.0)
        elif n == 13:
            client.send_message("/dreamvid/reset", [])
        elif n == 16:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.sendto(b"\x00not osc at all", ("127.0.0.1", port))
            client.send_message("/dreamvid/strength", "loud")
            client.send_message("/dreamvid/louder", 1)
        sent.setdefault(n, stats["index"])

    result = dreamvid.render_live(SAMPLE, [str(tmp_path / "osc.mkv")], **LIVE, width=160, octaves=1, pace="dream",
                                  frames=22, osc=str(port), on_frame=on_frame,
                                  progress=lambda s: s.message and notices.append(s.message))
    steps = [st["step"] for st in seen]
    amounts = [st["amount"] for st in seen]
    print(f"\nOSC: steps {[round(x, 2) for x in steps]}\n     amounts {[round(a, 1) for a in amounts]}"
          f"\n     notices {notices}")
    assert result.status.dreamed == 22 and len(seen) == 22  # the show ran to its end
    base = steps[0]
    assert steps[:5] == [base] * 5
    moved = next(i for i, x in enumerate(steps) if x != base)
    assert moved <= 7  # taken within a frame or two of its sending
    assert base < steps[moved] < 2.9 * base  # a glide, not a jump ...
    assert all(b >= a for a, b in zip(steps[moved:], steps[moved + 1:]))  # ... rising ...
    assert steps[-1] == pytest.approx(3 * base)  # ... to the fader's value
    before = np.mean(amounts[1:5])  # chained frames at the settings' step (frame 0 is a fresh shot's)
    after = np.mean([a for a, st in zip(amounts[moved + 4:13], seen[moved + 4:13]) if not st["cut"]])
    assert after > 1.5 * before, (before, after)
    cuts = [i for i, st in enumerate(seen) if st["cut"]]
    assert cuts[0] == 0 and any(13 <= i <= 15 for i in cuts[1:]) and result.cuts >= 1, cuts  # /reset: a fresh shot
    assert any(f"OSC: listening on udp 127.0.0.1:{port}" in m for m in notices), notices
    assert any("strength -> 3.00" in m for m in notices), notices
    for words in ("no OSC", "/dreamvid/strength 'loud' ignored: strength takes a number",
                  "unknown address /dreamvid/louder"):
        assert any(words in m for m in notices), (words, notices)
    assert len(seen) - 16 >= 5  # frames dreamed after the bad messages


def test_virtualcam_where_it_exists(tmp_path, capsys):
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        from dreamvid.live.sinks import VirtualCamSink

        with pytest.raises(dreamvid.OutputError, match=r"pip install 'dreamvid\[virtualcam\]'"):
            VirtualCamSink(25, (320, 180))
        pytest.skip("pyvirtualcam is not installed: the virtual camera is tested where it is (and v4l2loopback)")
    if not any(n.startswith("video") for n in os.listdir("/dev")):
        from dreamvid.cli import main

        assert main(["live", CLIP, "-o", "virtualcam", "--preset", "preview", "--seconds", "1", "--no-stdin"]) == 2
        err = capsys.readouterr().err
        assert "no virtual camera to write to" in err and "modprobe v4l2loopback" in err and err.count("\n") <= 3, err
        pytest.skip("no v4l2loopback device (/dev/video*): load it with sudo modprobe v4l2loopback")
    result, _ = live_run(CLIP, ["virtualcam"], seconds=3.0, loop=True)
    assert result.status.dreamed > 0


@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed: the window sink is tested under a virtual display")
    display = f":{90 + os.getpid() % 100}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.kill()
    proc.wait()


@one_pass
def test_the_window_under_xvfb_takes_real_keys(xvfb, tmp_path):
    """The window sink shows the dream; keys pressed in it (xdotool, real X key events) act:
    'n' switches the look, '+' strengthens, 's' snapshots, 'q' quits before the time is up."""
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed: it presses the keys in the window")
    statuses = []

    def press():
        time.sleep(2.5)
        for key in ("n", "plus", "s", "q"):
            # no window manager under Xvfb: focus the window itself (XSetInputFocus), then real key events (XTEST)
            subprocess.run(["xdotool", "search", "--name", "dreamvid live", "windowfocus", "--sync", "key", key],
                           check=False, env=dict(os.environ), capture_output=True, timeout=10)
            time.sleep(0.7)

    presser = None

    def progress(s):
        nonlocal presser
        statuses.append(s.message)
        if presser is None:
            presser = threading.Thread(target=press, daemon=True)
            presser.start()

    t0 = time.perf_counter()
    result = dreamvid.render_live(CLIP, ["window"], **LIVE, octaves=1, seconds=60, loop=True, looks="block4_conv3",
                                  snapshots=str(tmp_path), progress=progress)
    assert time.perf_counter() - t0 < 55  # 'q' ended it
    assert result.status.dreamed > 0
    assert "look: block4_conv3" in statuses and "step x1.25" in statuses
    assert any(n.endswith(".png") for n in os.listdir(tmp_path))
