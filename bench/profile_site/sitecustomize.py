"""Put on PYTHONPATH by `python -m bench.serve_cpu --cprofile FILE` (with SERVECPU_PROFILE=FILE): every thread of the
process runs under its own cProfile, timed in that thread's CPU time (time.thread_time), so waits cost nothing.
SIGUSR1 starts it (each thread at its next Python call), SIGUSR2 writes all threads' stats merged to FILE and FILE.done.
Calls still running at SIGUSR2 (a thread blocked in queue.get) show nonsense times: read finished calls only."""

import os

if os.environ.get("SERVECPU_PROFILE"):
    import cProfile
    import pstats
    import signal
    import sys
    import threading
    import time

    _armed = [False]
    _profiles: list = []
    _lock = threading.Lock()

    def _hook(frame, event, arg):
        if _armed[0]:
            sys.setprofile(None)
            profile = cProfile.Profile(time.thread_time)
            with _lock:
                _profiles.append(profile)
            profile.enable()

    def _arm(*_):
        _armed[0] = True

    def _dump(*_):
        _armed[0] = False
        with _lock:
            profiles = list(_profiles)
        stats = None
        for profile in profiles:
            profile.create_stats()
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        stats.dump_stats(os.environ["SERVECPU_PROFILE"])
        with open(os.environ["SERVECPU_PROFILE"] + ".done", "w") as done:
            done.write(str(len(profiles)))

    threading.setprofile(_hook)
    sys.setprofile(_hook)
    signal.signal(signal.SIGUSR1, _arm)
    signal.signal(signal.SIGUSR2, _dump)
