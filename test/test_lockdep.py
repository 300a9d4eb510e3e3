"""lockdep finds locking bugs the run itself survives: the lockdepdemo app
commits each classic bug once (an AB/BA order between two mutexes, a
spinlock used both by an interrupt handler and with interrupts enabled,
sleeping while holding a spinlock) and, with LOCKDEP_FATAL, the report
names the locks and the source lines that took them, and the kernel stops
with the panic status. The correct versions of the same code run clean."""
import os
import re
import sys

import pytest

from harness import PANIC_STATUS

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from symbolize import symbolize  # noqa: E402

DEMO = "apps/lockdepdemo/main.cpp"


def run(build, machine, scenario):
    image = build("lockdepdemo")
    m = machine(image, append=f"lockdepdemo.scenario={scenario}").start()
    status = m.wait_exit(timeout=60)
    return status, m.serial_text(), image


def report_of(text):
    """The lines of lockdep's report, without the 'lockdep: ' prefix."""
    return [line[len("lockdep: "):] for line in text.splitlines() if line.startswith("lockdep: ")]


def test_correct_locking_runs_clean(build, machine):
    status, text, _ = run(build, machine, "clean")
    assert status == 0, text
    assert "lockdepdemo: done" in text
    assert "lockdep:" not in text
    assert "audit done" in text and "transfer booked" in text


def test_ab_ba_order_between_two_mutexes_is_reported(build, machine):
    status, text, image = run(build, machine, "abba")
    assert status == PANIC_STATUS, text
    assert "transfer booked" in text and "audit done" not in text  # stopped at the inverted acquisition
    lines = report_of(text)
    assert "possible deadlock: lock order inversion" in lines
    report = "\n".join(lines)
    assert re.search(rf"acquires 'accounts', a lock constructed at {DEMO}:\d+", report)
    assert re.search(rf"here at {DEMO}:\d+ \(.*audit", report)
    assert re.search(rf"while holding 'ledger'.*\n\s+taken at {DEMO}:\d+ \(.*audit", report)
    # Both orders, each with the sites of its two acquisitions.
    assert re.search(r"'accounts' then 'ledger' \(thread 'bank'\):\n\s+first taken at .*transfer.*\n\s+then taken "
                     r"at .*transfer", report)
    assert re.search(r"'ledger' then 'accounts' \(thread 'bank'\):\n\s+first taken at .*audit.*\n\s+then taken "
                     r"at .*audit", report)
    assert "locking bug (CONFIG_LOCKDEP_FATAL)" in text
    # The report's backtrace symbolizes to the demo's audit().
    assert "audit" in symbolize(image.elf, text.split("lockdep: backtrace:")[1].split("lockdep: ====")[0])


def test_spinlock_taken_in_interrupt_and_with_interrupts_enabled_is_reported(build, machine):
    status, text, _ = run(build, machine, "irq")
    assert status == PANIC_STATUS, text
    report = "\n".join(report_of(text))
    assert "interrupt-unsafe lock: taken in interrupt context and with interrupts enabled" in report
    assert re.search(rf"lock 'sensor-samples', a lock constructed at {DEMO}:\d+", report)
    assert re.search(rf"taken in interrupt context at {DEMO}:\d+ \(.*on_sample", report)
    assert re.search(rf"taken with interrupts enabled at {DEMO}:\d+ \(.*read_samples", report)


def test_sleeping_while_holding_a_spinlock_is_reported(build, machine):
    status, text, _ = run(build, machine, "sleep")
    assert status == PANIC_STATUS, text
    report = "\n".join(report_of(text))
    assert "sleeping while holding a spinlock" in report
    assert re.search(r"may sleep at libs/sched/src/\w+\.cpp:\d+ \(.*sleep_until", report)
    assert re.search(rf"while holding the spinlock 'stats'.*\n\s+taken at {DEMO}:\d+ \(.*update_stats", report)


def test_unknown_scenario_is_refused(build, machine):
    status, text, _ = run(build, machine, "nonsense")
    assert status == 2
    assert "unknown scenario 'nonsense'" in text
