"""Rendering in segments as Ray tasks (cluster.py) on a Ray started here with 2 CPUs.

Tiny as test_plan's: the pan clip of test_pipeline, the same three-layer network (saved as a
.keras file: a task loads the network itself), dreams of 2 octaves of 3 steps.
"""

import os

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from dreamvid import pipeline  # noqa: E402
from dreamvid.plan import make_plan  # noqa: E402
from test_pipeline import frames_of, make_clip, small  # noqa: E402

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
def test_a_node_lost_mid_render_still_completes(model_file, tmp_path):
    """Two nodes of one CPU each (ray.cluster_utils.Cluster, both on this machine, sharing its
    disk as a cluster shares a file system); the second is removed once frames are coming in:
    its task is retried on the first and continues after its last stored frame."""
    from ray.cluster_utils import Cluster

    clip = make_clip(tmp_path / "clip.mp4", 14)
    cfg = small(dream__model=model_file, video__chunk_frames=7, video__warmup_frames=2, video__overlap_frames=2)
    local = pipeline.render_video(cfg, clip, str(tmp_path / "local") + "/")
    env = {"env_vars": {"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, runtime_env=env, log_to_driver=False)
        cluster.wait_for_nodes()
        seen = []

        def frame(k, _stats):
            seen.append(k)
            if len(seen) == 3:  # both tasks under way: one node goes
                cluster.remove_node(worker)

        cfg.video.ray, cfg.video.ray_cpus = "auto", 1
        result = pipeline.render_video(cfg, clip, str(tmp_path / "ray") + "/", pipeline.Progress(frame=frame))
        assert result.frames == local.frames == 14
        for a, b in zip(frames_of(tmp_path / "local"), frames_of(tmp_path / "ray"), strict=True):
            assert np.array_equal(a, b)
    finally:
        ray.shutdown()
        cluster.shutdown()
