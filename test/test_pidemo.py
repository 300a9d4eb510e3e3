"""Priority inversion, bounded by priority inheritance (apps/pidemo).

Under -icount shift=0,sleep=off on one hart (guest time = instructions, so
the figures are exact). Each round a low-priority thread holds a mutex for
WORK_US of work, a high-priority thread wants it with a LIMIT_US time
limit, and a medium-priority thread spins for MEDIUM_US > LIMIT_US. With
SCHED_PRIORITY_INHERITANCE the holder is boosted past the medium thread and
the high thread waits at most the work; without it (configs/nopi.config)
the medium thread keeps the holder off the hart and every wait times out.
"""
import re

import pytest

WORK_US, LIMIT_US, MEDIUM_US, ROUNDS = 2000, 5000, 20000, 3
# The wake-up and handover path: a few thousand instructions at most.
EPSILON_NS = 50_000
ROUND = re.compile(r"pidemo: round=(\d+) high waited (\d+) ns \((bounded|timed out)\) low_boosted=([01])")

def run_pidemo(build, machine, fragments):
    image = build("pidemo", fragments)
    options = f"pidemo.rounds={ROUNDS} pidemo.work_us={WORK_US} pidemo.limit_us={LIMIT_US} " \
              f"pidemo.medium_us={MEDIUM_US}"
    m = machine(image, append=options, icount=True).start()
    m.expect(r"pidemo: done", timeout=60)
    assert m.wait_exit() == 0
    text = m.serial_text()
    rounds = [(int(n), int(ns), verdict, int(boosted)) for n, ns, verdict, boosted in ROUND.findall(text)]
    assert [r[0] for r in rounds] == list(range(1, ROUNDS + 1)), text
    return text, rounds

def test_priority_inheritance_bounds_the_high_threads_wait(build, machine):
    text, rounds = run_pidemo(build, machine, ())
    assert "pidemo: pi=on" in text
    for n, waited_ns, verdict, boosted in rounds:
        assert verdict == "bounded", (n, waited_ns)
        assert waited_ns <= WORK_US * 1000 + EPSILON_NS, (n, waited_ns)
        assert boosted == 1, n

def test_without_priority_inheritance_the_medium_thread_makes_the_high_one_time_out(build, machine):
    text, rounds = run_pidemo(build, machine, ("configs/nopi.config",))
    assert "pidemo: pi=off" in text
    for n, waited_ns, verdict, boosted in rounds:
        assert verdict == "timed out", (n, waited_ns)
        assert waited_ns >= LIMIT_US * 1000, (n, waited_ns)
        assert boosted == 0, n
