"""bench/procstat.py: a run's own peak RSS (issue 17: the full bench runs GET, POST-10 and
POST-50 on one collector process, and VmHWM alone is the peak since it started)."""

from __future__ import annotations

import subprocess
import sys
import time

from bench import procstat

# Touches 200 MB, frees them, then waits: its peak stays far above what it holds.
GROW_THEN_SHRINK = "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\ndel b\nprint('freed', flush=True)\n" \
    "import time; time.sleep(30)"


def test_reset_peaks_makes_vmhwm_the_peak_from_now_on():
    child = subprocess.Popen([sys.executable, "-c", GROW_THEN_SHRINK], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "freed"
        before = procstat.status_kb(child.pid)
        assert before["VmHWM"] > before["VmRSS"] + (150 << 10)  # the 200 MB it no longer holds

        procstat.reset_peaks([child.pid, 999_999_999])  # a process gone is skipped
        time.sleep(0.05)
        after = procstat.status_kb(child.pid)
        assert after["VmHWM"] < before["VmRSS"] + (20 << 10)
    finally:
        child.kill()
        child.wait()
