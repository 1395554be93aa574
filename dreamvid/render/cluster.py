"""The Ray runner: each segment of a render's plan (plan.py) as a Ray task on a cluster.

Imported only for `--ray`; without it nothing here runs and Ray is never imported. The runner
never knows how a frame is dreamed: a task calls segments.render_segment, the same function a
render on one machine calls, and the segment never knows where it runs.

- A task opens the input itself and writes its frames into the work folder beside the output,
  so the input and the output's folder must be on storage every node sees at the same path
  (NFS, a cluster file system): nothing but frame numbers travels through Ray.
- It takes one GPU where the cluster has GPUs, else `video.ray_cpus` CPUs, and limits
  TensorFlow's threads to those CPUs (Ray runs several tasks on one machine side by side).
- A worker process keeps its network (and the octave sizes traced) for the next segment with
  the same settings: Ray hands the queued segments to the workers already leased, so a worker
  loads the network once per render, not once per segment (max_calls=0 says so for GPU tasks
  too, where Ray's default is a fresh process per task).
- It reports each finished frame to a small actor on the driver's node; the driver drains it
  into the one progress bar.
- A task that fails (its node lost, a crash) is retried up to MAX_RETRIES times and continues
  after its last stored frame, since a segment resumes from the frames present.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable

try:
    import ray
except ImportError:  # the extra is optional: only --ray needs it
    ray = None

from dreamvid.config.settings import Config, build_config
from dreamvid.core.errors import ConfigError, OutputError
from dreamvid.core.progress import Progress
from dreamvid.engine import backends
from dreamvid.render.plan import Segment
from dreamvid.render.prepare import make_dreamer
from dreamvid.render.segments import dreamed_with, render_segment
from dreamvid.render.workfolder import SegmentFrames

__all__ = ["MAX_RETRIES", "RayRunner", "connect", "latest_cluster"]

MAX_RETRIES = 3  # a lost node costs one retry; more than a few failures is a bug, not bad luck
_POLL_S = 1.0  # how often the driver drains the progress actor (the bar moves in steps of this)


def connect(address: str, info: Callable[[str], None]) -> RayRunner:
    """Join the Ray cluster at `address` ("auto": RAY_ADDRESS, else the cluster last started on
    this machine by this user, else a new one here); a session already started (ray.init) is
    used as it is."""
    if ray is None:
        raise ConfigError("--ray needs Ray; install it with pip install 'dreamvid[ray]'")
    if not ray.is_initialized():
        try:
            if address == "auto" and not os.environ.get("RAY_ADDRESS"):
                which = _join_own(info)
            else:
                ray.init(address=None if address == "auto" else address, log_to_driver=False)
                which = f"joined {'RAY_ADDRESS' if address == 'auto' else address}"
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise ConfigError(f"cannot join the Ray cluster at '{address}' ({e}); start it with "
                              f"'ray start --head' and pass its address, e.g. --ray 10.0.0.5:6379") from None
    else:
        which = "the session already started"
    resources = ray.cluster_resources()
    info(f"Ray cluster ({which}): {int(resources.get('CPU', 0))} CPUs, {int(resources.get('GPU', 0))} GPUs")
    return RayRunner(info)


def _join_own(info: Callable[[str], None]) -> str:
    """--ray auto without RAY_ADDRESS: join the cluster `ray start` last started on this machine
    only when this user started it, else start a new one here. Never Ray's own "auto", which
    joins whatever it finds on a shared machine: the address in /tmp/ray/ray_current_cluster
    (whoever wrote it), and failing that any GCS a `ps` shows, another user's too."""
    found = latest_cluster()
    if found is not None:
        addr, owners = found
        if owners == {os.getuid()}:
            try:
                # Ray's "auto", now that its file is known to name this user's cluster: unlike
                # address=addr it also turns on the token a `ray start` cluster asks for when
                # this user has one (~/.ray/auth_token), where addr alone is refused after 20 s
                ray.init(address="auto", log_to_driver=False)
                if ray.get_runtime_context().gcs_address == addr:
                    return f"this user's, at {addr}"
                ray.shutdown()  # the file changed meanwhile: not the cluster checked
            except ConnectionError:  # stopped since: start one here
                pass
        else:
            others = ", ".join(_user(uid) for uid in sorted(owners - {os.getuid()}))
            info(f"Ray: the cluster at {addr} on this machine belongs to another user ({others}); starting one "
                 f"of this user's own (pass --ray {addr} to join it)")
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    return "a private one started here"


def latest_cluster() -> tuple[str, set[int]] | None:
    """(address, the uids behind it) of the cluster `ray start` last started on this machine,
    None without one. The address is read from ray_current_cluster in Ray's temp folder
    (RAY_TMPDIR, else TMPDIR, else /tmp; then ray/, as Ray finds it); the uids are the file's
    owner and those of the processes serving that address here (a raylet's --gcs-address), so
    a stale file of this user's naming a port another user's cluster took since counts as theirs."""
    folder = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(folder, "ray", "ray_current_cluster")
    try:
        with open(path, encoding="utf-8") as f:
            addr = f.read().strip()
            owners = {os.fstat(f.fileno()).st_uid}
    except OSError:
        return None
    if not addr:
        return None
    flag = f"--gcs-address={addr}".encode()
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):  # Linux; elsewhere the file's owner alone
        try:
            with open(cmdline, "rb") as f:
                args = f.read().split(b"\0")
            if flag in args:
                owners.add(os.stat(os.path.dirname(cmdline)).st_uid)  # /proc/PID belongs to its process's user
        except OSError:  # gone, or hidden (hidepid)
            pass
    return addr, owners


def _user(uid: int) -> str:
    try:
        import pwd  # Unix only, as Ray's clusters

        return f"{pwd.getpwuid(uid).pw_name}, uid {uid}"
    except (ImportError, KeyError):
        return f"uid {uid}"


class RayRunner:
    """Runs segments as Ray tasks and streams their frames to a Progress."""

    def __init__(self, info: Callable[[str], None] = lambda _m: None):
        self.info = info

    def run(self, cfg: Config, input_path: str, work_path: str, segments: list, base_seed: int,
            progress) -> dict | None:
        """Render `segments` (plan.Segment) into the work folder at `work_path`; progress.frame
        for each finished frame, in the order they finish. Returns what the first segment was
        dreamed with (segments.dreamed_with), None when there was nothing to do."""
        if not segments:
            return None
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        options = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": cfg.video.ray_cpus}
        threads = 1 if gpus else cfg.video.ray_cpus  # a GPU's task needs a core, not a pool
        here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)
        reporter = _Reporter.options(num_cpus=0, scheduling_strategy=here).remote()  # on the driver's node
        settings = json.dumps(cfg.to_dict())  # plain data: Config is rebuilt and validated in the task
        pending = [_segment.options(max_retries=MAX_RETRIES, retry_exceptions=False, **options).remote(
            settings, os.path.abspath(input_path), work_path, s.index, s.start, s.keep, s.end, s.fade, base_seed,
            threads, reporter) for s in segments]
        facts, workers, loads = None, set(), 0
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
                self._drain(reporter, progress)
                for ref in ready:
                    got, worker, loaded = ray.get(ref)  # a task's error (after its retries) is raised here
                    facts = facts or got
                    workers.add(worker)
                    loads += loaded
            self._drain(reporter, progress)
            self.info(f"Ray: {len(segments)} segment{'s' * (len(segments) != 1)} on {len(workers)} worker"
                      f"{'s' * (len(workers) != 1)}, network loads: {loads}")
        except BaseException:
            for ref in pending:  # Ctrl-C or a failed segment: stop the rest; their frames stay
                ray.cancel(ref, force=True)
            raise
        finally:
            ray.kill(reporter)
        return facts

    def _drain(self, reporter, progress) -> None:
        frames, notes = ray.get(reporter.take.remote())
        for note in notes:
            self.info(note)
        for k, stats in frames:
            progress.frame(k, stats)


if ray is not None:
    @ray.remote
    class _Reporter:
        """Frame numbers and notices from the tasks, held until the driver takes them."""

        def __init__(self):
            self.frames: list = []
            self.notes: list = []

        def add(self, k: int, stats: dict) -> None:
            self.frames.append((k, stats))

        def note(self, message: str) -> None:
            self.notes.append(message)

        def sync(self) -> None:
            """Nothing: a caller that waits for it knows its earlier calls were applied (an actor
            runs one caller's calls in the order they were made)."""

        def take(self) -> tuple[list, list]:
            out, self.frames, notes, self.notes = self.frames, [], self.notes, []
            return out, notes

    @ray.remote(max_calls=0)  # the worker process stays for the next segment, with its network
    def _segment(settings: str, input_path: str, work_path: str, index: int, start: int, keep: int, end: int,
                 fade: int, base_seed: int, threads: int, reporter) -> tuple:
        """One segment on a worker: segments.render_segment into the shared work folder.
        Returns (what it was dreamed with, the worker process, 1 if it loaded the network now)."""
        return _render_here(settings, input_path, work_path, index, start, keep, end, fade, base_seed, threads,
                            reporter)


_DREAMERS: dict = {}  # one network per worker process and settings: Ray reuses its workers


def _render_here(settings, input_path, work_path, index, start, keep, end, fade, base_seed, threads, reporter):
    _limit_threads(threads)
    if not os.path.isfile(os.path.join(work_path, "state.json")):
        raise OutputError(f"the work folder '{work_path}' is not visible on this node; put the output on "
                          f"storage every node sees at the same path (NFS or a cluster file system)")
    data = json.loads(settings)
    cfg = build_config({f"{section}.{key}": value for section, values in data.items() for key, value in values.items()})
    # before Keras is imported in this worker; the network, so `auto` chooses as the driver did
    backends.configure(cfg.dream.backend, cfg.dream.device, network=cfg.dream.model)
    key = json.dumps(data["dream"], sort_keys=True) + json.dumps(data["video"], sort_keys=True)
    loaded = key not in _DREAMERS
    if loaded:
        _DREAMERS.clear()  # one network at a time per worker
        _DREAMERS[key] = make_dreamer(cfg, None, Progress())
    dreamer = _DREAMERS[key]
    segment = Segment(index=index, shot=0, start=start, keep=keep, end=end, fade=fade)
    frames = SegmentFrames(os.path.join(work_path, "segments", f"{index:05d}"), start)
    node = ray.get_runtime_context().get_node_id()
    try:  # which node took the segment, and after how many frames: a retry shows as a second line
        os.makedirs(frames.path, exist_ok=True)
        with open(os.path.join(frames.path, "attempts"), "a", encoding="utf-8") as f:
            f.write(f"{node} {os.getpid()} {frames.done}\n")
    except OSError:
        pass  # a courtesy for whoever looks into the work folder; the frames are what counts
    if 0 < frames.done < end - start:  # a retried task (its node lost) or a resumed render
        reporter.note.remote(f"Ray: segment {index} continues after its {frames.done} stored frames "
                             f"(a retry or a resume), on {node[:8]}")
    progress = Progress(frame=lambda k, stats: reporter.add.remote(k, _plain(stats)))
    render_segment(cfg, input_path, segment, frames, base_seed, dreamer, progress)
    ray.get(reporter.sync.remote())  # every frame's report applied before the task returns: the last drain sees them
    return dreamed_with(dreamer[0]), f"{node}:{os.getpid()}", int(loaded)


def _plain(stats: dict) -> dict:
    return {k: (float(v) if not isinstance(v, bool) else v) for k, v in stats.items()}


def _limit_threads(n: int) -> None:
    """TensorFlow's pools no larger than the CPUs the task was given (several tasks share a
    machine). The variables are read when TensorFlow starts; the calls apply if it has not
    run yet in this worker, and fail harmlessly once it has (the worker keeps its first limit)."""
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, n)))
    except (ImportError, RuntimeError):
        pass
