"""Faults and panics end in a report on the console and a failing exit."""
import pytest
from harness import PANIC_STATUS
from symbolize import symbolize  # support/, on the path through conftest.py

EXCEPTIONS = {
    "illegal": (r"illegal instruction \(scause 0x2\)", "do_illegal"),
    "load": (r"load access fault \(scause 0x5\)", "do_load"),
    "store": (r"store/AMO access fault \(scause 0x7\)", "do_store"),
    "jump": (r"instruction access fault \(scause 0x1\)", None),
    "ebreak": (r"breakpoint \(scause 0x3\)", "do_ebreak"),
}


@pytest.fixture(scope="module")
def crashtest():
    from harness import build_image
    return build_image("crashtest")


@pytest.mark.parametrize("kind", sorted(EXCEPTIONS))
def test_exception_report(crashtest, machine, kind):
    pattern, function = EXCEPTIONS[kind]
    m = machine(crashtest, append=f"crash={kind}").start()
    m.expect(rf"\*\*\* {pattern} on hart 0")
    m.expect(r"sepc 0x[0-9a-f]{16}  stval 0x[0-9a-f]{16}  sstatus 0x[0-9a-f]{16}")
    m.expect(r"ra [0-9a-f]{16}\s+sp [0-9a-f]{16}")
    m.expect(r"t6 [0-9a-f]{16}")
    m.expect(r"Backtrace:\r?\n    #0  0x[0-9a-f]{16} \(pc\)\r?\n    #1 ")
    m.expect(rf"Kernel panic: unhandled exception .* \(exit status {PANIC_STATUS}\)")
    assert m.wait_exit() == PANIC_STATUS
    if kind == "load" or kind == "store":
        assert "stval 0x0000000000000040" in m.serial_text()
    if function:
        # The faulting pc resolves to the function that faulted.
        report = symbolize(crashtest.elf, m.serial_text())
        frame0 = next(l for l in report.splitlines() if l.strip().startswith("#0"))
        assert function in frame0, report


@pytest.mark.parametrize("kind,message,function", [
    ("panic", r"crashtest asked for a panic\r?\n    at apps/crashtest/main\.cpp:\d+", "crash"),
    ("verify", r"VERIFY failed: x == 42\r?\n    at apps/crashtest/main\.cpp:\d+", "do_verify"),
])
def test_panic_and_verify_report(crashtest, machine, kind, message, function):
    m = machine(crashtest, append=f"crash={kind}").start()
    m.expect(rf"\*\*\* Kernel panic on hart 0: {message}")
    m.expect(r"Backtrace:\r?\n(    #\d+ +0x[0-9a-f]{16}\r?\n){3,}")
    m.expect(rf"\*\*\* stopping \(exit status {PANIC_STATUS}\)")
    assert m.wait_exit() == PANIC_STATUS
    assert function in symbolize(crashtest.elf, m.serial_text())


def test_main_return_value_is_the_exit_status(crashtest, machine):
    m = machine(crashtest, append="crash=exit:7").start()
    assert m.wait_exit() == 7


def test_unknown_crash_kind_is_an_error_not_a_hang(crashtest, machine):
    m = machine(crashtest, append="crash=bogus").start()
    m.expect(r"unknown crash kind 'bogus'")
    assert m.wait_exit() == 2
