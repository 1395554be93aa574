"""What the machine can do, for the benchmark's figures: its cores' clock and estimated peak FLOP/s
(an estimate, never reported above 100%), and the peak memory one 3840x2160 frame takes."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

from dreamvid.engine import hardware

# ----------------------------------------------------------------------------- arithmetic


def max_clock_mhz() -> float:
    """The cores' highest clock in MHz (cpufreq's cpuinfo_max_freq, the most of any core), or 0
    where the system does not say (a virtual machine often does not)."""
    best = 0.0
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        try:
            with open(path, encoding="ascii") as f:
                best = max(best, int(f.read().strip()) / 1000)  # kHz
        except (OSError, ValueError):
            continue
    return best


def cpu_peak(precision: str = "float32") -> tuple[str, int, float, float, str]:
    """(CPU model, usable cores, GHz, estimated peak in GFLOP/s for `precision`, the basis of the
    estimate) from the cores' maximum clock (max_clock_mhz; where unknown, the clock /proc/cpuinfo
    names, which may be the base clock: `basis` says so) and the CPU's flags
    (hardware.flop_per_cycle)."""
    model, mhz = "unknown CPU", 0.0
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("cpu MHz") and not mhz:
                    mhz = float(line.split(":", 1)[1])
        m = re.search(r"@\s*([\d.]+)\s*GHz", model)
        if m:
            mhz = float(m.group(1)) * 1000
    except OSError:
        pass
    top = max_clock_mhz()
    clock = "the maximum clock" if top else "the clock /proc/cpuinfo names (no maximum to read: maybe the base clock)"
    mhz = top or mhz
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ghz = mhz / 1000
    per_cycle, unit = hardware.flop_per_cycle(hardware.cpu_flags(), precision, model)
    flags_known = hardware.cpu_flags() is not None
    basis = f"cores x GHz x {per_cycle} FLOP/cycle, {unit}" + ("" if flags_known else ", no CPU flags to read")
    return model, cores, ghz, cores * ghz * per_cycle, f"{basis} at {clock}; an estimate"


def share_of_peak(gflops: float, peak: float) -> str:
    """'73%' of an assumed peak, never above 100%: a figure past it means the cores ran faster
    than the clock the estimate used, which is said instead."""
    if gflops <= peak:
        return f"{100 * gflops / peak:.0f}%"
    return "100% (the cores ran faster than the clock assumed)"


# ----------------------------------------------------------------------------- peak memory


def peak_memory_4k(model_name: str = "vgg16-hed") -> float:
    """Peak resident memory (GB) of a fresh process dreaming one 3840x2160 frame: tile_size 512,
    1 octave, 1 step. Run in a subprocess so nothing else this process holds is counted."""
    proc = subprocess.run([sys.executable, "-m", "dreamvid.measure.bench", "--_child-4k", model_name],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    m = re.search(r"maxrss_kb (\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"the 4K memory run failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return int(m.group(1)) * 1024 / 1e9
