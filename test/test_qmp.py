"""Life cycle through QMP, and the interrupt-driven console, on the echo app
(which idles in wfi waiting for console input)."""
import time

import pytest


@pytest.fixture(scope="module")
def echo():
    from harness import build_image
    return build_image("echo")


def test_query_status_stop_cont(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    assert m.qmp.execute("query-status")["status"] == "running"
    m.qmp.execute("stop")
    m.qmp.wait_event("STOP")
    assert m.qmp.execute("query-status")["status"] == "paused"
    m.write("while paused\r")
    with pytest.raises(AssertionError):
        m.expect(r"echo: while paused", timeout=1)
    m.qmp.execute("cont")
    m.qmp.wait_event("RESUME")
    assert m.qmp.execute("query-status")["status"] == "running"
    m.expect(r"echo: while paused")


def test_system_reset_reboots_to_the_banner(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    m.write("before reset\r")
    m.expect(r"echo: before reset")
    m.qmp.execute("system_reset")
    m.qmp.wait_event("RESET")
    m.expect(r"OpenSBI")           # firmware runs again
    m.expect(r"echo: ready")       # and the kernel boots again
    m.write("after reset\r")
    m.expect(r"echo: after reset")


def test_guest_reboot_request_resets_the_machine(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    m.write("reboot\r")
    m.expect(r"echo: ready", timeout=20)
    assert m.running


def test_quit_ends_qemu(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    try:
        m.qmp.execute("quit")
    except EOFError:
        pass  # QEMU may close the socket before answering
    m.wait_exit(timeout=10)
    assert not m.running


def test_console_input_is_interrupt_driven(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    line = "the quick brown fox jumps over the lazy dog " * 2
    m.write(line.strip() + "\r")
    match = m.expect(r"echo: (.*) \(rx (\d+) bytes, (\d+) interrupts, background \d+\)")
    assert match.group(1).decode() == line.strip()
    assert int(match.group(2)) == len(line.strip()) + 1
    assert int(match.group(3)) >= 1


def test_a_thread_blocked_on_console_input_lets_others_run(build, machine):
    """With the scheduler, read() parks the reading thread (main, priority
    16): the lowest-priority background thread runs while it waits, which
    it could not if main waited in wfi."""
    image = build("echo", extra=["CONFIG_LIB_SCHED=y"])
    m = machine(image).start()
    m.expect(r"echo: ready")
    counts = []
    for word in ("one", "two"):
        m.write(word + "\r")
        counts.append(int(m.expect(rf"echo: {word} \(.*background (\d+)\)").group(1)))
        time.sleep(0.2)
    # It ran while main waited between the lines (the first line may come
    # before it ever got the hart).
    assert counts[1] > counts[0], counts
    m.write("exit 0\r")
    assert m.wait_exit() == 0


def test_exit_status_from_the_guest(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    m.write("exit 5\r")
    assert m.wait_exit() == 5


def test_failure_artefacts_hold_console_and_registers(echo, machine):
    m = machine(echo).start()
    m.expect(r"echo: ready")
    artefacts = m.artefacts()
    assert "echo: ready" in artefacts["serial log"]
    regs = artefacts["info registers"]
    assert "pc" in regs and "mstatus" in regs, regs
