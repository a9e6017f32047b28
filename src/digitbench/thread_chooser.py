"""How many threads a training run uses: whatever is fastest now, measured.

On an idle machine more threads run an epoch faster; with other CPU-bound processes
running, the same threads can be several times *slower*: each step has three parallel
regions, and every region waits at its barrier for whichever thread the operating
system has just descheduled, while one thread alone keeps near its idle speed. So the
count is measured instead of assumed (docs/results.md has the figures).

:class:`ThreadChooser` is the policy. :class:`digitbench.threads.RunThreads` runs a
run's steps in timed chunks, asks :meth:`ThreadChooser.next_chunk` how many threads and
steps to run next, and reports each chunk's seconds to :meth:`ThreadChooser.record`.
The chooser

- starts at the most threads allowed (numba's count at the call), with a short chunk
  that only warms up (the first steps of a run are slower, whatever the count), then
  :data:`START_MEASURES` measured ones, and probes at once; unless other processes are
  running when it starts (:func:`other_running_tasks`, Linux): then it starts at the
  cores they leave free, and treats more threads as slow (:data:`BUSY_STEP_GUESS`)
  until measured; it looks again after :data:`RECHECK_SECONDS` of training, as after a
  switch to fewer threads (below), since a task seen at the start may be short-lived;
- sizes chunks in time (:data:`CHUNK_SECONDS`, between :data:`MIN_STEPS` and
  :data:`CHUNK_STEPS` steps), so that a count that has become very slow costs little
  before it is noticed;
- now and then runs a short *probe* chunk (:data:`PROBE_SECONDS`) at half (or double)
  the current count, paid from a budget of :data:`PROBE_SHARE` of the time spent on
  the current count, so that probing costs about that share at most, idle or busy;
- probes fewer threads at once when a chunk at the current count (of more than one)
  is :data:`SLOWDOWN` times slower than its recent ones (another process started);
- after each switch, starts again from short chunks (doubling), as a probe that won
  by luck may have missed the stalls of a busy machine;
- after any switch to fewer threads, probes the count it left once more after
  :data:`RECHECK_SECONDS` of training, if no other process is running then
  (:func:`other_running_tasks`): a stall that no process explains (the virtual
  machine's host, a kernel thread) is usually over by then, while a real CPU-bound
  process is seen and waits for the budget;
- switches when a probe's seconds per step beat the current count's recent best by
  :data:`MARGIN`.

Results do not depend on the thread count (no value is summed across threads), so
none of this changes a number, only the time. The choice and its reason are
:attr:`ThreadChooser.record_dict`, which the trainer puts in its summary.
"""

import os
import time

#: Seconds a chunk at the chosen count aims at (~64 steps at batch 64 on an idle machine).
CHUNK_SECONDS = 0.01
#: Steps per chunk at most (each chunk is one more call, whose first batch is gathered
#: without overlap), and at least.
CHUNK_STEPS = 64
MIN_STEPS = 4
#: Steps of the first chunk, when nothing is known yet.
FIRST_STEPS = 8
#: Chunks measured at the starting count before the first probe (after the warm-up one).
START_MEASURES = 2
#: Seconds a probe aims at (MIN_STEPS to 2 * FIRST_STEPS steps): short, since it may be
#: the slow one, but long enough to meet a stall (a descheduled thread holds a barrier ~ms).
PROBE_SECONDS = 0.005
#: Share of the time at the current count that probes may cost.
PROBE_SHARE = 0.01
#: A chunk is "slowed" when its seconds per step exceed the recent best by this factor.
SLOWDOWN = 1.3
#: A probe wins when it is this much faster (relative) than the current count's recent best.
MARGIN = 0.10
#: Chunks at each count whose best is its "recent" speed.
RECENT = 3
#: Seconds per step assumed for a count not measured yet that is above the current
#: one, when other processes were running at the start (a slow step on a busy machine):
#: probing it waits until PROBE_SHARE of the
#: time run pays for it (~8 s of training), as it would after measuring it slow.
BUSY_STEP_GUESS = 0.02
#: Seconds of training at the lower count after a switch to fewer threads (or a start
#: beside other running processes) before the one recheck of the higher count (when no
#: other process is running then).
RECHECK_SECONDS = 0.02
#: Looks at /proc of :func:`other_running_tasks`, and the pause between two.
LOOKS, LOOK_PAUSE = 5, 2e-4


def other_running_tasks(looks=LOOKS, pause=LOOK_PAUSE):
    """How many threads of other processes were running or runnable at every one of
    ``looks`` looks at /proc (the fewest seen: a task that runs for a moment does not
    count); 0 where /proc cannot tell (not Linux).

    ``procs_running`` of /proc/stat counts every runnable thread, this process's
    included (its numba workers spin for a while after a parallel region), so the
    threads of this process in state R (/proc/self/task/*/stat) are taken off.
    """
    fewest = None
    try:
        for look in range(looks):
            if look:
                time.sleep(pause)
            with open("/proc/stat", "rb") as f:
                running = next(int(line.split()[1]) for line in f if line.startswith(b"procs_running"))
            own = 0
            for task in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{task}/stat", "rb") as f:
                        own += f.read().rsplit(b")", 1)[1].split()[0] == b"R"
                except OSError:  # the thread has just ended
                    pass
            fewest = running - own if fewest is None else min(fewest, running - own)
    except (OSError, StopIteration, ValueError, IndexError):
        return 0
    return max(0, fewest)


class ThreadChooser:
    """Chooses the thread count of each chunk of training steps from measured speed.

    Parameters
    ----------
    cores : int, the cores this process may run on

    Attributes
    ----------
    threads : int or None, the current count (None before the first chunk)
    max_threads : int, the most allowed at the last call
    reason : str, why ``threads`` is the current count
    recent : dict int -> list of float, the last seconds per step measured at each count
    budget : float, seconds of probing earned (PROBE_SHARE of the time at the current count)
    """

    #: Hook: () -> threads of other processes running now (tests replace it).
    others_running = staticmethod(other_running_tasks)

    def __init__(self, cores):
        self.cores = cores  # the cores this process may run on (digitbench.threads.usable_cores)
        self.threads = None
        self.max_threads = None
        self.reason = "not measured yet"
        self.recent = {}
        self.budget = 0.0
        self._probe = None  # the count being probed in the chunk just handed out
        self._probe_now = False
        self._ramp = FIRST_STEPS  # chunk steps at most: doubles per chunk after each switch
        self._busy_start = False  # other processes were running at the start
        self._warm = False  # the first chunk after a start has run (its time is not a measurement)
        self._warm_per_step = None  # seconds per step of that chunk: a guess for sizing the next
        self._recheck_after = None  # seconds left before rechecking the count a switch (or a busy start) left

    def next_chunk(self, max_threads, remaining):
        """Return (threads, steps) for the next chunk, steps <= remaining."""
        if max_threads != self.max_threads or self.threads is None or self.threads > max_threads:
            self.max_threads = max_threads
            self.threads = max_threads
            self.reason = "the most threads allowed; not measured yet"
            self._probe_now = True  # after the first measured chunk
            self._ramp = FIRST_STEPS
            self._warm = False
            others = self.others_running() if max_threads > 1 else 0
            self._busy_start = others > 0
            if others:
                cores = self.cores
                self.threads = max(1, min(max_threads, cores - others))
                self._probe_now = False
                self._recheck_after = RECHECK_SECONDS  # a process seen at the start may be gone soon
                self.reason = (f"{_threads(self.threads)}: {others} other running "
                               f"{'thread' if others == 1 else 'threads'} on {cores} cores at the start; "
                               "more not measured yet")
        self._probe = None
        if max_threads == 1:
            self.reason = "one thread allowed"
            return 1, remaining
        if len(self.recent.get(self.threads, ())) < START_MEASURES and not self.recent.keys() - {self.threads}:
            # the start: nothing else measured yet. The measured chunks are as long as the
            # probe will be, so that what a chunk costs besides its steps (a cold first
            # gathering, waking threads) weighs the same on both sides
            if not self._warm:
                return self.threads, min(FIRST_STEPS, remaining)
            return self.threads, min(self._steps_for(self.threads, PROBE_SECONDS, MIN_STEPS, 2 * FIRST_STEPS),
                                     remaining)
        probe = self._probe_count()
        probe_steps = self._steps_for(probe, PROBE_SECONDS, MIN_STEPS, 2 * FIRST_STEPS)
        if self._recheck_after is not None and self._recheck_after <= 0 and probe > self.threads:
            self._recheck_after = None  # once per switch to fewer threads (or busy start)
            self._probe_now = self.others_running() == 0
        if self._probe_now or self.budget >= probe_steps * self._estimate(probe):
            self._probe, self._probe_now = probe, False
            return probe, min(probe_steps, remaining)
        steps = min(self._steps_for(self.threads, CHUNK_SECONDS, MIN_STEPS, CHUNK_STEPS), self._ramp)
        self._ramp = min(2 * self._ramp, CHUNK_STEPS)
        return self.threads, min(steps, remaining)

    def _estimate(self, threads):
        """Seconds per step expected at ``threads``: its last measurement, else the current
        count's (or :data:`BUSY_STEP_GUESS` for more threads on a machine busy at the start)."""
        if threads in self.recent:
            return self.recent[threads][-1]
        if self._busy_start and threads > self.threads:
            return BUSY_STEP_GUESS
        if self.threads in self.recent:
            return self.recent[self.threads][-1]
        return self._warm_per_step or 0.0  # only the warm-up chunk seen (0: nothing yet)

    def _steps_for(self, threads, seconds, least, most):
        return int(min(most, max(least, seconds / max(self._estimate(threads), 1e-9))))

    def _probe_count(self):
        """Half the current count, or double it (up to the maximum), alternating when both exist."""
        down = max(1, self.threads // 2)
        up = min(self.max_threads, 2 * self.threads)
        if self.threads == 1:
            return up
        if self.threads == self.max_threads:
            return down
        return up if len(self.recent.get(down, ())) > len(self.recent.get(up, ())) else down

    def record(self, threads, steps, seconds):
        """Note that ``steps`` steps at ``threads`` threads took ``seconds``."""
        if steps <= 0:
            return
        if not self._warm:  # the warm-up chunk: cold caches and pages, threads waking up
            self._warm, self._warm_per_step = True, seconds / steps  # a first guess only
            return
        per_step = seconds / steps
        previous = self.recent.get(threads, [])
        self.recent[threads] = (previous + [per_step])[-RECENT:]
        if self.max_threads == 1:
            return
        if self._probe is None:
            self.budget += PROBE_SHARE * seconds
            if self._recheck_after is not None:
                self._recheck_after -= seconds
            if threads > 1 and previous and per_step > SLOWDOWN * min(previous):
                # slowed: is another process taking our threads' cores? Probe fewer threads now,
                # against this speed, not the faster ones before.
                self._probe_now = True
                self.recent[threads] = [per_step]
            if self.reason.endswith("not measured yet") and not self._busy_start:
                self.reason = f"{_threads(threads)} (the most allowed); no other count measured yet"
            return
        self.budget = max(0.0, self.budget - seconds)
        current = min(self.recent[self.threads])
        busy = "; the machine seems busy"
        if per_step < (1 - MARGIN) * current:
            old = self.threads
            self.threads = threads
            self._ramp = FIRST_STEPS
            self._recheck_after = RECHECK_SECONDS if threads < old else None
            self.reason = (f"{_threads(threads)} measured faster than {old} "
                           f"({per_step * 1e6:.0f} vs {current * 1e6:.0f} us a step)"
                           + (busy if threads < self.max_threads else ""))
        elif per_step < current:  # faster, but within the margin: not worth a switch
            self.reason = (f"{_threads(self.threads)} kept ({current * 1e6:.0f} us a step; {threads} "
                           f"measured {per_step * 1e6:.0f}, less than {MARGIN:.0%} faster)"
                           + (busy if self.threads < self.max_threads else ""))
        else:
            self.reason = (f"{_threads(self.threads)} measured fastest "
                           f"({current * 1e6:.0f} vs {per_step * 1e6:.0f} us a step at {threads})"
                           + (busy if self.threads < self.max_threads else ""))

    @property
    def record_dict(self):
        """The choice as a small JSON-able dict: threads, max_threads, reason, seconds_per_step."""
        return {"threads": self.threads, "max_threads": self.max_threads, "reason": self.reason,
                "seconds_per_step": {t: min(s) for t, s in sorted(self.recent.items())}}


def _threads(n):
    """ "1 thread", "2 threads"."""
    return f"{n} thread" if n == 1 else f"{n} threads"
