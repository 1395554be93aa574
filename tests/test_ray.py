"""Rendering in segments as Ray tasks (cluster.py) on a Ray started here with 2 CPUs.

Tiny as test_plan's: the pan clip of test_pipeline, the same three-layer network (saved as a
.keras file: a task loads the network itself), dreams of 2 octaves of 3 steps.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from test_pipeline import frames_of, make_clip, small

from dreamvid.jobs import pipeline
from dreamvid.render.plan import make_plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model_file(tiny3_keras_file):
    return tiny3_keras_file


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield
    ray.shutdown()


def test_ray_render_matches_the_local_chunked_render(local_ray, model_file, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 14, cut_at=9)
    cfg = small(dream__model=model_file, video__chunk_frames=6, video__warmup_frames=2, video__overlap_frames=2)
    local = pipeline.render_video(cfg, clip, str(tmp_path / "local") + "/")
    seen, said = [], []
    cfg.video.ray, cfg.video.ray_cpus = "auto", 1  # two workers side by side on the 2 CPUs
    result = pipeline.render_video(cfg, clip, str(tmp_path / "ray") + "/",
                                   pipeline.Progress(frame=lambda k, s: seen.append(k), info=said.append))
    assert result.frames == local.frames == 14 and result.cuts == local.cuts == [9]
    for a, b in zip(frames_of(tmp_path / "local"), frames_of(tmp_path / "ray"), strict=True):
        assert np.array_equal(a, b)
    plan = make_plan(14, [9], 6, 2, 2)
    assert len(seen) == sum(s.frames for s in plan.segments)  # every dreamed frame reported once
    assert len(plan.segments) == 3
    assert "Ray: 3 segments on 2 workers, network loads: 2" in said  # the third on a worker with its network


def test_one_worker_renders_segment_after_segment_with_one_network(local_ray, model_file, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", 12)
    cfg = small(dream__model=model_file, video__chunk_frames=6, video__warmup_frames=2, video__overlap_frames=2)
    said = []
    cfg.video.ray, cfg.video.ray_cpus = "auto", 2  # the 2 CPUs run one task at a time
    result = pipeline.render_video(cfg, clip, str(tmp_path / "ray") + "/", pipeline.Progress(info=said.append))
    assert result.frames == 12
    assert "Ray: 2 segments on 1 worker, network loads: 1" in said


@pytest.mark.slow
def test_a_node_lost_mid_render_is_retried_after_its_stored_frames(model_file, tmp_path):
    """Two nodes of one CPU each (ray.cluster_utils.Cluster, both on this machine, sharing its
    disk as a cluster shares a file system): node A is removed while the segment it took (its
    `attempts` file says which) has frames stored and is unfinished; the task is retried on the
    head node, continues after its last stored frame (the notice and a second attempt line say
    how many, and where), and the output equals the local render's."""
    import glob
    import re
    import threading
    import time

    from ray.cluster_utils import Cluster

    clip = make_clip(tmp_path / "clip.mp4", 24)
    cfg = small(dream__model=model_file, video__chunk_frames=12, video__iterations_next=4, video__warmup_frames=2,
                video__overlap_frames=2)
    local = pipeline.render_video(cfg, clip, str(tmp_path / "local") + "/")
    lengths = [s.end - s.start for s in make_plan(24, [], 12, 2, 2).segments]
    assert len(lengths) == 2
    env = {"env_vars": {"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    out = str(tmp_path / "ray") + "/"
    segments = os.path.join(pipeline.work_folder(out), "segments")
    try:
        ray.init(address=cluster.address, runtime_env=env, log_to_driver=False)
        cluster.wait_for_nodes()
        removed, said, done = [], [], threading.Event()

        def attempts(i):
            try:
                with open(os.path.join(segments, f"{i:05d}", "attempts"), encoding="utf-8") as f:
                    return [line.split() for line in f]
            except OSError:
                return []

        def watch():  # every 10 ms, in a thread: the driver hears of frames only once a second
            while not done.is_set() and not removed:
                for i, length in enumerate(lengths):
                    n = len(glob.glob(os.path.join(segments, f"{i:05d}", "*.png")))
                    took = attempts(i)
                    if took and took[0][0] == worker.node_id and 0 < n < length - 2:
                        cluster.remove_node(worker)  # A's segment under way, frames stored: A goes
                        removed.append((i, n))
                        break
                time.sleep(0.01)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        cfg.video.ray, cfg.video.ray_cpus = "auto", 1
        cfg.output.keep_frames = True  # the segments' attempts read after the render
        try:
            result = pipeline.render_video(cfg, clip, out, pipeline.Progress(info=said.append))
        finally:
            done.set()
            watcher.join()
        assert removed, f"the render ended before node A's segment had frames stored: {said}"
        retried = [m for m in said if re.match(r"Ray: segment \d continues after its \d+ stored frames", m)]
        print(f"node removed with {removed[0]} frames stored; {retried}")
        assert len(retried) == 1, said  # the lost node's segment, and only it, went again
        index, kept = map(int, re.findall(r"segment (\d) continues after its (\d+)", retried[0])[0])
        lost, stored = removed[0]
        assert index == lost and 0 < kept < lengths[index]  # after the frames it had stored, not from its start
        assert kept >= stored  # at least those stored when A went (it may store one more meanwhile)
        took = attempts(index)
        assert [t[0] for t in took] == [worker.node_id, cluster.head_node.node_id] and took[1][2] == str(kept)
        assert cluster.head_node.node_id[:8] in retried[0]
        assert result.frames == local.frames == 24
        for a, b in zip(frames_of(tmp_path / "local"), frames_of(tmp_path / "ray"), strict=True):
            assert np.array_equal(a, b)
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_ray_auto_joins_only_a_cluster_this_user_started(tmp_path, monkeypatch):
    """A real `ray start --head` (Ray's temp folder a fresh one, RAY_TMPDIR): `--ray auto` joins
    it while its ray_current_cluster file is this user's; given to another uid (chown, as another
    user's `ray start` leaves it on a shared machine), `--ray auto` starts a cluster of its own,
    says why, and leaves the other alone. Ray's own address="auto" joins it in both cases."""
    import shutil
    import signal
    import subprocess
    import tempfile
    import time

    from dreamvid.render import cluster

    if os.geteuid() != 0:
        pytest.skip("giving the cluster's file to another user (chown) needs root")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    monkeypatch.setenv("RAY_TMPDIR", temp)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen([ray_cli, "start", "--head", "--port=0", "--num-cpus=1", "--include-dashboard=false",
                             "--disable-usage-stats", "--block"], env={**os.environ, "RAY_TMPDIR": temp},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    marker = os.path.join(temp, "ray", "ray_current_cluster")
    try:
        t0 = time.monotonic()
        while not (os.path.isfile(marker) and Path(marker).read_text().strip()):
            assert head.poll() is None, head.stderr.read().decode()[-500:]
            assert time.monotonic() - t0 < 180, "ray start did not come up within 180 s"
            time.sleep(0.5)
        time.sleep(1)  # the raylet registered with the GCS
        address = Path(marker).read_text().strip()
        assert cluster.latest_cluster() == (address, {os.getuid()})
        said = []
        cluster.connect("auto", said.append)
        assert ray.get_runtime_context().gcs_address == address  # this user's: joined
        assert said[-1].startswith(f"Ray cluster (this user's, at {address}):"), said
        ray.shutdown()
        os.chown(marker, 65534, 65534)
        assert cluster.latest_cluster() == (address, {os.getuid(), 65534})
        said = []
        cluster.connect("auto", said.append)
        mine = ray.get_runtime_context().gcs_address
        ray.shutdown()
        print(said)
        assert said[-1].startswith("Ray cluster (a private one started here):"), said
        assert mine != address  # another user's: not joined, one of its own started
        assert f"the cluster at {address} on this machine belongs to another user" in said[0]
        assert "uid 65534" in said[0] and f"--ray {address}" in said[0]
        ray.init(address="auto", log_to_driver=False)  # what --ray auto did before: Ray's own "auto"
        joined = ray.get_runtime_context().gcs_address
        ray.shutdown()
        assert joined == address  # would have joined the other user's cluster
        assert head.poll() is None  # the other cluster untouched
    finally:
        ray.shutdown()
        os.killpg(head.pid, signal.SIGKILL)  # ray start --block and every process it started
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)
