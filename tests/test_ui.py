"""The web page (`dreamvid ui`): its refusals without a browser, then the real server (a
`dreamvid ui` process) for what it serves and where it listens, then a real browser (Playwright
driving the system's Chromium, /usr/bin/chromium: Playwright's own browser download is not
needed) through the page's whole use: open the sample clip, preview a frame, render a tiny clip
with its progress showing, cancel and resume, play and download the result, and the one-line
answer to a text file uploaded as a video. Nothing here needs the network: the server is a
process on the loopback, the "download" is the browser saving the render from it, and every
request the page makes outside the server is refused and fails the test (the page fetches
nothing from outside: no fonts, no analytics). Each step's screenshot goes to $DREAMVID_UI_SHOTS
(or the test's temporary folder), to be looked at.

The server and browser tests skip with a message where Gradio, Playwright or Chromium is absent.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from cli_asserts import one_line_error

from dreamvid import cli
from dreamvid.core.errors import ConfigError, InputError
from dreamvid.ui import page as ui
from dreamvid.ui import work as uiwork

HANG = 900  # seconds: the browser test's waits, which only a hang exceeds

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")
CHROMIUM = os.environ.get("DREAMVID_CHROMIUM", "/usr/bin/chromium")
FRAMES = 20  # the browser's render: enough to cancel partway at about 2 frames/s on two cores


# ----------------------------------------------------------------------------- no server


def test_listen_without_a_password_is_refused_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv(ui.AUTH_ENV, raising=False)
    code = cli.main(["ui", "--listen", "0.0.0.0"])
    one_line_error(code, capsys.readouterr().err, "--listen 0.0.0.0", "--auth")
    code = cli.main(["ui", "--listen", "0.0.0.0", "--auth", "bob"])  # no password in it
    one_line_error(code, capsys.readouterr().err, "USER:PASSWORD")


def test_loopback_by_default_and_a_password_from_the_environment(monkeypatch):
    monkeypatch.delenv(ui.AUTH_ENV, raising=False)
    assert uiwork.check_listen(None, None) == ("127.0.0.1", None)
    monkeypatch.setenv(ui.AUTH_ENV, "ann:s3cret")
    assert uiwork.check_listen("0.0.0.0", None) == ("0.0.0.0", ("ann", "s3cret"))
    with pytest.raises(ConfigError, match="USER:PASSWORD"):
        uiwork.check_listen("0.0.0.0", "ann:")


def test_a_typed_path_reaches_only_allowed_folders_once_others_are_served(tmp_path):
    """On the loopback a typed path may name any file here; served to other machines (--listen),
    only one inside an --allow-folder (links and '..' resolved first), else uploads only."""
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    (private / "secret.png").write_bytes(b"x")
    (shared / "clip.mp4").write_bytes(b"x")
    (shared / "link.png").symlink_to(private / "secret.png")
    assert uiwork.typed_path(str(private / "secret.png"), None) == str(private / "secret.png")
    assert uiwork.typed_path(str(shared / "clip.mp4"), [str(shared)]) == str(shared / "clip.mp4")
    for escape in (private / "secret.png", shared / "link.png", shared / ".." / "private" / "secret.png"):
        with pytest.raises(InputError, match="--allow-folder DIR") as err:
            uiwork.typed_path(str(escape), [str(shared)])
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="in no folder"):
        uiwork.typed_path(str(shared / "clip.mp4"), [])
    with pytest.raises(ConfigError, match="is not a folder"):
        ui.serve(listen="0.0.0.0", auth="u:p", folder=str(tmp_path / "w"), allow_folders=[str(tmp_path / "nowhere")])


def test_an_upload_is_checked_for_its_type_before_any_work(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    with pytest.raises(InputError, match=r"'notes.txt' is not a clip or a still \(.txt\)"):
        uiwork.describe(str(text), str(tmp_path / "page"))
    fake = tmp_path / "notes.mp4"  # a text file that only claims to be a video: ffmpeg says so
    fake.write_text("not a video either\n" * 20)
    with pytest.raises(InputError, match="notes.mp4"):
        uiwork.describe(str(fake), str(tmp_path / "page"))
    with pytest.raises(InputError, match="over this page's limit"):
        uiwork.describe(os.path.join(SAMPLES, "pan.mp4"), str(tmp_path / "page"), max_mb=0.01)
    assert not (tmp_path / "page").exists()  # nothing made for a refused file
    opened, frame = uiwork.describe(os.path.join(SAMPLES, "pan.mp4"), str(tmp_path / "page"))
    assert opened.kind == "clip" and "29.970 fps" in opened.line and "with sound" in opened.line
    assert frame.shape[2] == 3 and os.path.isfile(opened.first)


def test_the_file_guard_answers_only_for_files_in_its_folder(tmp_path):
    """FileGuard on its own (Gradio's own path rules, which the server test meets too, aside):
    a /file= request inside the work folder reaches the app; outside it, through a link out of
    it, up out of it with '..', or a URL, is answered 403 before the app sees it."""
    import asyncio

    folder = tmp_path / "work"
    (folder / "renders").mkdir(parents=True)
    (folder / "renders" / "made.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no\n")
    os.symlink(str(tmp_path / "secret.txt"), str(folder / "renders" / "link.txt"))
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])

    guard = uiwork.FileGuard(app, str(folder))

    def status_of(path):
        sent = []

        async def send(message):
            sent.append(message)

        asyncio.run(guard({"type": "http", "path": path}, None, send))
        return sent[0]["status"] if sent else "reached"

    inside = str(folder / "renders" / "made.mp4")
    assert status_of("/gradio_api/file=" + inside) == "reached" and reached == ["/gradio_api/file=" + inside]
    for target in (str(tmp_path / "secret.txt"), str(folder / "renders" / "link.txt"), "/etc/passwd",
                   str(folder / "renders" / ".." / ".." / "secret.txt"), "http://127.0.0.1:1/x", "file:///etc/passwd"):
        for route in ("/gradio_api/file=", "/file=", "/gradio_api/proxy="):
            assert status_of(route + target) == 403, route + target
    assert status_of("/") == "reached"  # the page itself, and anything not a file, passes on
    assert len(reached) == 2


# ----------------------------------------------------------------------------- the page's handlers


@pytest.fixture
def handlers(tmp_path, tiny_keras_file):
    """The page's event handlers as Gradio calls them (no server, no browser), its work folder,
    and its controls' values for a tiny look (the tiny network, 48 px, 6 frames)."""
    pytest.importorskip("gradio", reason="the page needs Gradio: pip install 'dreamvid[ui]'")
    folder = str(tmp_path / "work")
    fns = {f.name: f.fn for f in ui.build(folder).fns.values()}

    def controls(**given):
        values = {"preset": uiwork.NO_PRESET, "record": None, "model": str(tiny_keras_file), "layers": "", "step": 3.0,
                  "octaves": 2, "iterations": 4, "iterations_next": 2, "blend": 0.9, "carry_limit": 3.0, "zoom": "1.02",
                  "width": 48,
                  "seed": 7, "keep_colors": False, "mask": None, "guide": None, "guide_weight": 1.0, "frames": 6,
                  "fmt": uiwork.FORMATS[0][0]}
        values.update(given)
        return list(values.values())

    return fns, folder, controls


def _last(gen):
    out = None
    for out in gen:  # noqa: B007 (the last one is kept)
        pass
    return out


def test_gallery_tiles_are_kept_so_a_second_look_is_instant(handlers):
    fns, _, controls = handlers
    opened = fns["open_input"](os.path.join(SAMPLES, "coffee.jpg"), "")[0]
    line, tiles, labels = _last(fns["gallery"](opened, *controls()))
    assert labels == ["conv1", "conv2"] and "made in" in line, line
    assert [label for _, label in tiles] == labels and all(os.path.isfile(p) for p, _ in tiles)
    made = [os.path.getmtime(p) for p, _ in tiles]
    t0 = time.perf_counter()
    again = list(fns["gallery"](opened, *controls()))
    took = time.perf_counter() - t0
    assert len(again) == 1 and "kept from before" in again[0][0] and took < 1.0, (again[0][0], took)
    assert again[0][1] == tiles and [os.path.getmtime(p) for p, _ in tiles] == made  # the same tiles, none redone
    click = type("Click", (), {"index": 1})()
    assert fns["pick_tile"](labels, click)[0] == "conv2"  # a tile clicked: its layer goes into the Layers box
    line, _, _ = _last(fns["gallery"](opened, *controls(step=2.0)))  # another look: new tiles
    assert "made in" in line, line


def _frames(path):
    import numpy as np

    from dreamvid.media.sources import open_source

    with open_source(path) as source:
        return np.stack(list(source))


def test_a_record_loads_back_and_repeats_the_render(handlers, tmp_path):
    fns, _, controls = handlers
    opened = fns["open_input"](None, os.path.join(SAMPLES, "pan.mp4"))[0]
    line, _, play, files = _last(fns["render"](opened, *controls(step=2.5, seed=11, carry_limit=1.5)))
    assert "done in" in line, line
    output, record = files
    assert play == output  # an H.264 MP4 plays as it is: no copy
    from dreamvid.media.sources import open_source

    with open_source(output) as source:  # the sound ends with the 6 frames, not a second later
        assert source.info.n_frames == 6 and abs(source.info.duration - 6 / 29.97) < 0.05, source.info
    line, record_state, preset, *values = fns["load_record"](record)
    assert record_state == record and preset == uiwork.NO_PRESET and "Render repeats it" in line, line
    loaded = dict(zip(uiwork.LOOK_KEYS, values))
    assert (loaded["step"] == 2.5 and loaded["seed"] == 11 and loaded["width"] == 48
            and loaded["carry_limit"] == 1.5), loaded
    # the page's controls as the record set them (the defaults elsewhere): the same frames again
    again = controls(record=record, **{k: v for k, v in loaded.items()
                                       if k in ("step", "seed", "octaves", "iterations", "carry_limit")})
    line, _, _, files2 = _last(fns["render"](opened, *again))
    assert "done in" in line and files2[0] != output, line
    import numpy as np

    np.testing.assert_array_equal(_frames(files2[0]), _frames(output))
    text = tmp_path / "not-a-record.json"
    text.write_text("this is not a record\n")
    line = fns["load_record"](str(text))[0]
    assert "error:" in line and "not-a-record.json" in line, line


def test_prores_and_16_bit_renders_play_from_an_h264_copy(handlers):
    from dreamvid.media.sources import probe_video

    fns, folder, controls = handlers
    opened = fns["open_input"](None, os.path.join(SAMPLES, "pan.mp4"))[0]
    deep = next(label for label, _, o in uiwork.FORMATS if o.get("bit_depth") == 16)
    line, _, play, files = _last(fns["render"](opened, *controls(fmt=deep, frames=3)))
    assert "done in" in line, line
    codec, pix_fmt = uiwork.video_stream(files[0])
    assert codec == "prores" and pix_fmt in ("yuv444p12le", "yuv444p10le"), (codec, pix_fmt)  # more than 8 bits kept
    assert play.startswith(os.path.join(folder, "previews")) and uiwork.video_stream(play) == ("h264", "yuv420p")
    facts = probe_video(play)
    assert facts["n_frames"] == 3 and facts["width"] == 48 and facts["has_audio"], facts
    made = os.path.getmtime(play)
    assert uiwork.playable(files[0], folder) == play and os.path.getmtime(play) == made  # the copy is kept


def test_a_webm_render_from_the_page_plays_as_it_is(handlers):
    """The page's WebM choice: VP9 with the clip's sound as Opus, played in the page as written (a
    browser plays VP9), no H.264 copy made."""
    from dreamvid.media.sources import probe_video

    fns, folder, controls = handlers
    opened = fns["open_input"](None, os.path.join(SAMPLES, "pan.mp4"))[0]
    webm = next(label for label, ext, _ in uiwork.FORMATS if ext == ".webm")
    line, _, play, files = _last(fns["render"](opened, *controls(fmt=webm, frames=3)))
    assert "done in" in line, line
    assert files[0].endswith(".webm") and play == files[0] and not os.path.isdir(os.path.join(folder, "previews"))
    assert uiwork.video_stream(play) == ("vp9", "yuv420p")
    facts = probe_video(play)
    assert facts["n_frames"] == 3 and facts["has_audio"], facts


# ----------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} write them) listening on `port`."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        with open(name) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.rsplit(":", 1)
                if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                    found.append(addr)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A `dreamvid ui` process on a free port, its work folder, its URL; stopped after."""
    pytest.importorskip("gradio", reason="the page needs Gradio: pip install 'dreamvid[ui]'")
    folder = tmp_path_factory.mktemp("page") / "work"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != ui.AUTH_ENV}
    log = open(folder.parent / "server.log", "w")  # noqa: SIM115  (closed in the finally below)
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid.cli", "ui", "--port", str(port), "--folder", str(folder)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(folder.parent))
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + HANG  # the page starts in seconds; only a hang takes this long
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    pytest.fail("the server did not start: " + (folder.parent / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield {"url": url, "port": port, "folder": str(folder), "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_server_listens_on_the_loopback_only(server):
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("reads the listening sockets from Linux's /proc/net/tcp")
    assert _listening(server["port"]) == ["0100007F"]  # 127.0.0.1, and no other address


def test_the_server_serves_files_from_its_work_folder_only(server, tmp_path):
    folder = server["folder"]
    inside = os.path.join(folder, "renders", "made-here.txt")
    with open(inside, "w") as f:
        f.write("made by the page\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the page\n")
    beside = os.path.join(os.path.dirname(folder), "server.log")  # the server's own working folder
    os.symlink(str(outside), os.path.join(folder, "renders", "link.txt"))  # a link out of the folder
    base = server["url"] + "gradio_api/file="
    assert _status(base + inside) == 200
    for path in (str(outside), beside, "/etc/passwd", os.path.join(folder, "renders", "link.txt"),
                 os.path.join(folder, "renders", "..", "..", "server.log"), "http://127.0.0.1:1/x"):
        assert _status(base + path) == 403, path
        assert _status(server["url"] + "file=" + path) in (403, 404), path


# ----------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser():
    # CI (.ci/run) sets DREAMVID_BROWSER_TEST=required where it installed Chromium: there a
    # missing piece fails the test instead of skipping it unseen
    required = os.environ.get("DREAMVID_BROWSER_TEST") == "required"
    try:
        from playwright import sync_api as sync
    except ImportError:
        (pytest.fail if required else pytest.skip)("the browser test needs Playwright: pip install playwright")
    if not os.path.exists(CHROMIUM):
        (pytest.fail if required else pytest.skip)(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                                                   f"DREAMVID_CHROMIUM)")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def test_the_page_opens_previews_renders_cancels_resumes_plays_and_downloads(server, browser, tmp_path):
    shots = os.environ.get("DREAMVID_UI_SHOTS") or str(tmp_path / "shots")
    os.makedirs(shots, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    status = page.locator("#dv-status")
    outside = []  # requests the page made anywhere but the server (none may be)

    def only_the_server(route):
        if route.request.url.startswith(server["url"]) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)

    def shot(name):
        page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=True)

    # every wait is long enough that only a hang exceeds it: pinned to one busy core, a dream here
    # takes minutes, and no verdict may depend on the machine's speed
    page.set_default_timeout(HANG * 1000)

    def wait_status(text, timeout=HANG):
        page.wait_for_function("t => document.querySelector('#dv-status').innerText.includes(t)", arg=text,
                               timeout=timeout * 1000)

    def settle():
        page.wait_for_function("() => !document.querySelector('.pending, .generating')", timeout=HANG * 1000)

    t0 = time.monotonic()
    # 1) open the page, then the sample clip: its first frame and facts at once
    page.goto(server["url"])
    page.wait_for_selector("#dv-upload input[type=file]", state="attached")
    shot("01-page")
    page.locator("#dv-upload input[type=file]").set_input_files(os.path.join(SAMPLES, "pan.mp4"))
    wait_status("opened")
    page.wait_for_selector("#dv-input img")
    settle()
    assert "320x180" in page.locator("#dv-info").inner_text() and "with sound" in page.locator("#dv-info").inner_text()
    shot("02-opened")

    # 2) a tiny look: preview preset (the offline network), 96 px wide, 20 frames
    for sel, value in (("#dv-width input", "96"), ("#dv-frames input", str(FRAMES)), ("#dv-seed input", "1")):
        page.locator(sel).fill(value)
        page.locator(sel).blur()
    page.click("#dv-preview")
    wait_status("the first frame dreamed in")
    page.wait_for_selector("#dv-dream img")
    settle()
    shot("03-preview")

    # 3) render, with the progress and the latest frame showing; cancel it partway (more steps
    # for the later frames than the preview preset's, so there is time to). Cancel is clicked in
    # the browser itself the moment two frames show, but where the page, the server and the dream
    # share one busy core the render may end before the click reaches it: then it is rendered
    # again, longer (a new output: the frames count is in its name), until a cancel lands
    page.locator("#dv-iterations-next input[type=number]").fill("24")
    page.locator("#dv-iterations-next input[type=number]").blur()
    for frames in (FRAMES, 3 * FRAMES, 6 * FRAMES):  # the sample clip has 120
        page.locator("#dv-frames input").fill(str(frames))
        page.locator("#dv-frames input").blur()
        page.click("#dv-render")
        progress_text = page.wait_for_function("""n => {
            const p = document.querySelector('#dv-status progress');
            if (!p || p.value < 2 || !document.querySelector('#dv-dream img')) return false;
            const said = document.querySelector('#dv-status').innerText;
            if (!said.includes(`of ${n}`) || said.includes('done in')) return false;  // not an earlier render's
            document.querySelector('#dv-cancel').click();
            return said; }""", arg=frames, polling=50, timeout=HANG * 1000).json_value()
        assert "frame" in progress_text and f"of {frames}" in progress_text and "frames/s" in progress_text, \
            progress_text
        page.wait_for_function("() => ['cancelled:', 'done in', 'nothing is running'].some("
                               "t => document.querySelector('#dv-status').innerText.includes(t))")
        settle()
        if "cancelled:" in status.inner_text():
            break
        print(f"\nthe render of {frames} frames ended before the cancel reached it: again, longer")
    else:
        raise AssertionError(f"no cancel landed partway through a render: {status.inner_text()}")
    shot("04-rendering")
    assert "done in" not in progress_text, progress_text
    kept = int(status.inner_text().split("cancelled: ")[1].split()[0])
    assert 2 <= kept < frames, status.inner_text()
    stored = glob.glob(os.path.join(server["folder"], "renders", ".*.dreamvid", "frames", "*.png"))
    assert len(stored) >= kept, stored  # the work folder is kept, its frames in it
    shot("05-cancelled")

    # 4) render again: it resumes after the kept frames and finishes; the result plays
    page.click("#dv-render")
    wait_status("done in")
    done = status.inner_text()
    assert f"frame {frames} of {frames}" in done and f"resumed at frame {kept}" in done and "ETA" not in done, done
    page.wait_for_selector("#dv-video video")
    settle()
    played = page.evaluate("""async () => {
        const v = document.querySelector('#dv-video video');
        v.muted = true;
        await v.play();
        await new Promise(r => setTimeout(r, 600));
        return {time: v.currentTime, width: v.videoWidth, duration: v.duration};
    }""")
    assert played["time"] > 0 and played["width"] == 96 and abs(played["duration"] - frames / 29.97) < 0.1, played
    shot("06-playing")

    # 5) download the render (its record is offered beside it): a real video, every frame in it
    rows = page.locator("#dv-files tbody tr")
    names = ["".join(rows.nth(i).locator("td").first.text_content().split()) for i in range(rows.count())]
    assert len(names) == 2 and names[0].endswith(".mp4") and names[1] == names[0] + ".json", names
    with page.expect_download() as got:
        rows.nth(0).locator("a").click()
    saved = str(tmp_path / "download.mp4")
    got.value.save_as(saved)
    from dreamvid.media.sources import probe_video

    facts = probe_video(saved)
    assert facts["n_frames"] == frames and facts["width"] == 96 and facts["has_audio"], facts

    # 6) a text file uploaded as a video (the clip's upload cleared first, as a person would):
    # one line in the page, and no input held
    text = tmp_path / "notes.txt"
    text.write_text("this is not a video\n")
    page.locator("#dv-upload").get_by_role("button", name="Clear").click()
    page.locator("#dv-upload input[type=file]").set_input_files(str(text))
    wait_status("error:")
    line = status.inner_text().strip()
    assert line.startswith("error: 'notes.txt' is not a clip or a still") and "\n" not in line, line
    settle()
    assert page.locator("#dv-input img").count() == 0  # the clip's frame is gone: nothing held to render
    shot("07-text-file")
    assert not outside, f"the page asked for files outside its server: {outside[:5]}"
    print(f"\nbrowser test: {time.monotonic() - t0:.1f} s; screenshots in {shots}")
    page.close()
    shutil.rmtree(os.path.join(server["folder"], "renders"), ignore_errors=True)
