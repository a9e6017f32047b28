"""How many threads the numba training loop uses: whatever is fastest now, measured.

On an idle two-core machine two threads run an epoch ~1.8x faster than one. With one
other CPU-bound process running, the same two threads are 4-6x *slower* than idle: each
step has three parallel regions, and every region waits at its barrier for whichever
thread the operating system has just descheduled, while one thread alone keeps near
its idle speed. So the backend measures instead of assuming.

:class:`ThreadChooser` is the policy. :meth:`NumbaBackend.train_batches
<digitbench.kernels.numba_backend.NumbaBackend.train_batches>` runs its steps in timed
chunks (:data:`CHUNK_STEPS`), asks :meth:`ThreadChooser.next_chunk` how many threads
and steps to run next, and reports each chunk's seconds to :meth:`ThreadChooser.record`.
The chooser

- starts at the most threads allowed (``numba.get_num_threads()`` at the call);
- now and then runs a short *probe* chunk (:data:`PROBE_STEPS`) at half (or double)
  the current count: early once, then every :data:`PROBE_EVERY` steps, the interval
  doubling each time the probe loses (up to :data:`PROBE_EVERY_MAX`), so that an idle
  machine pays almost nothing;
- probes at once when the current count gets :data:`SLOWDOWN` times slower than the
  fastest it has been (another process started);
- switches when a probe's seconds per step beat the current count's recent best by
  :data:`MARGIN`.

Results do not depend on the thread count (no value is summed across threads), so
none of this changes a number, only the time. The choice and its reason are
:attr:`ThreadChooser.record_dict`, exposed as ``NumbaBackend.thread_choice``.
"""

#: Steps per timed chunk at the chosen count (~10 ms at batch 64 on an idle machine).
CHUNK_STEPS = 64
#: Steps of a probe at another count: short, since it may be the slow one.
PROBE_STEPS = 8
#: Steps between probes, at first; doubled after each probe that loses.
PROBE_EVERY = 512
PROBE_EVERY_MAX = 4096
#: The first probe comes after this many steps (one per process, when nothing is known).
FIRST_PROBE_AFTER = 2 * CHUNK_STEPS
#: The current count is "slowed" when its seconds per step exceed its best by this factor.
SLOWDOWN = 1.3
#: A probe wins when it is this much faster (relative) than the current count's recent best.
MARGIN = 0.10
#: Chunks at the current count whose best is its "recent" speed.
RECENT = 3


class ThreadChooser:
    """Chooses the thread count of each chunk of training steps from measured speed.

    Attributes
    ----------
    threads : int or None, the current count (None before the first chunk)
    max_threads : int, the most allowed at the last call
    reason : str, why ``threads`` is the current count
    recent : dict int -> list of float, the last seconds per step measured at each count
    best : dict int -> float, the fastest seconds per step ever measured at each count
    """

    def __init__(self):
        self.threads = None
        self.max_threads = None
        self.reason = "not measured yet"
        self.recent = {}
        self.best = {}
        self._probe = None  # the count being probed in the chunk just handed out
        self._since_probe = 0
        self._interval = FIRST_PROBE_AFTER

    def next_chunk(self, max_threads, remaining):
        """Return (threads, steps) for the next chunk, steps <= remaining."""
        if max_threads != self.max_threads or self.threads is None or self.threads > max_threads:
            self.max_threads = max_threads
            self.threads = max_threads
            self.reason = "the most threads allowed (numba.get_num_threads()); not measured yet"
            self._since_probe, self._interval = 0, FIRST_PROBE_AFTER
        if max_threads == 1:
            self.reason = "one thread allowed (numba.get_num_threads() is 1)"
            self._probe = None
            return 1, remaining
        if self._since_probe >= self._interval and self.threads in self.recent:
            self._probe = self._probe_count()
            return self._probe, min(PROBE_STEPS, remaining)
        self._probe = None
        return self.threads, min(CHUNK_STEPS, remaining)

    def _probe_count(self):
        """Half the current count, or double it (up to the maximum), alternating when both exist."""
        down = max(1, self.threads // 2)
        up = min(self.max_threads, 2 * self.threads)
        if self.threads == 1:
            return up
        if self.threads == self.max_threads:
            return down
        tried_down_last = self.recent.get(down) and (self.recent.get(up) is None)
        return up if tried_down_last else down

    def record(self, threads, steps, seconds):
        """Note that ``steps`` steps at ``threads`` threads took ``seconds``."""
        if steps <= 0:
            return
        per_step = seconds / steps
        self.recent.setdefault(threads, []).append(per_step)
        del self.recent[threads][:-RECENT]
        self.best[threads] = min(self.best.get(threads, per_step), per_step)
        if self.max_threads == 1:
            return
        if self._probe is None:
            self._since_probe += steps
            if per_step > SLOWDOWN * self.best[threads]:  # slowed: someone else wants the cores?
                self._since_probe = max(self._since_probe, self._interval)  # probe now, against
                self.recent[threads] = [per_step]  # this speed, not the faster ones before
            if self.reason.endswith("not measured yet"):
                self.reason = f"{threads} threads (the most allowed); no other count measured yet"
            return
        current = min(self.recent[self.threads])
        self._since_probe = 0
        if per_step < (1 - MARGIN) * current:
            old = self.threads
            self.threads = threads
            self.reason = (f"{threads} threads measured faster than {old} "
                           f"({per_step * 1e6:.0f} vs {current * 1e6:.0f} us a step)"
                           + ("; the machine seems busy" if threads < old else ""))
            self._interval = PROBE_EVERY
        else:
            self.reason = (f"{self.threads} threads measured fastest "
                           f"({current * 1e6:.0f} vs {per_step * 1e6:.0f} us a step at {threads})"
                           + ("; the machine seems busy" if self.threads < self.max_threads else ""))
            self._interval = min(PROBE_EVERY_MAX, max(PROBE_EVERY, 2 * self._interval))

    @property
    def record_dict(self):
        """The choice as a small JSON-able dict: threads, max_threads, reason, seconds_per_step."""
        return {"threads": self.threads, "max_threads": self.max_threads, "reason": self.reason,
                "seconds_per_step": {t: min(s) for t, s in sorted(self.recent.items())}}
