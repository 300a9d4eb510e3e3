"""The hardening libraries catch what they are for, and whole kernels run
clean under them.

libs/ubsan: undefined behaviour is reported in words with file:line:column
and the values involved, then panics (exit 70), or in report mode is
reported once per source location and execution goes on.
libs/stackprot: an overwritten stack canary is reported with a backtrace and
panics; the canary is different at every boot.
"""
import glob
import os
import re
import subprocess

import pytest
from harness import PANIC_STATUS, ROOT, ktap
from symbolize import symbolize  # support/, on the path through conftest.py
HARDENING = ("configs/hardening.config",)
REPORT_MODE = ("CONFIG_UBSAN_MODE_REPORT=y",)
CROSS = os.environ.get("CROSS_COMPILE", "riscv64-linux-gnu-")
CRASHTEST_SOURCE = os.path.join(ROOT, "apps", "crashtest", "main.cpp")


def source_line(marker):
    """The line of apps/crashtest/main.cpp that holds `marker` (the operation
    a report must point at)."""
    with open(CRASHTEST_SOURCE) as f:
        lines = [i for i, line in enumerate(f, 1) if marker in line]
    assert len(lines) == 1, f"{marker!r} should be on exactly one line of {CRASHTEST_SOURCE}"
    return lines[0]


def symbol_address(elf, name):
    out = subprocess.run([CROSS + "nm", elf], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16)
    raise AssertionError(f"{name} not in {elf}")


def assert_clean(text):
    for sign in ("*** UBSan", "stack smashing", "Kernel panic"):
        assert sign not in text, f"{sign!r} in the console output:\n{text[-4000:]}"


# kind -> (report line, panic title, the source text it must point at, function in the backtrace)
UB_KINDS = {
    "ubsan-overflow": (r"signed integer overflow: 2147483647 \+ 1 cannot be represented in type 'int'",
                       "UBSan: signed integer overflow", "base::opaque(INT_MAX) + 1", "do_ubsan_overflow"),
    "ubsan-shift": (r"shift out of bounds: shift exponent 40 is too large for 32-bit type 'int'",
                    "UBSan: shift out of bounds", "base::opaque(1) << base::opaque(40)", "do_ubsan_shift"),
    "ubsan-misaligned": (r"load of misaligned address 0x[0-9a-f]*[1235679abdef] for type 'const uint32_t', "
                         r"which requires 4 byte alignment",
                         "UBSan: misaligned access", "base::opaque(bytes + 1)", "do_ubsan_misaligned"),
}


@pytest.mark.parametrize("kind", sorted(UB_KINDS))
def test_ubsan_reports_and_panics(build, machine, kind):
    report, title, marker, function = UB_KINDS[kind]
    line = source_line(marker)
    image = build("crashtest", fragments=HARDENING)
    m = machine(image, append=f"crash={kind}").start()
    where = m.expect(rf"\*\*\* UBSan: {report}\r?\n    at apps/crashtest/main\.cpp:(\d+):(\d+)\r?\n")
    assert int(where.group(1)) == line
    assert int(where.group(2)) > 0
    m.expect(rf"\*\*\* Kernel panic on hart 0: {re.escape(title)}\r?\n    at apps/crashtest/main\.cpp:{line}\r?\n")
    m.expect(r"Backtrace:\r?\n(    #\d+ +0x[0-9a-f]{16}\r?\n){3,}")
    m.expect(rf"\*\*\* stopping \(exit status {PANIC_STATUS}\)")
    assert m.wait_exit() == PANIC_STATUS
    text = m.serial_text()
    assert "survived" not in text
    assert function in symbolize(image.elf, text)


def test_stack_smash_is_caught(build, machine):
    image = build("crashtest", fragments=HARDENING)
    m = machine(image, append="crash=stack-smash").start()
    m.expect(r"crashtest: wrote 24 bytes into a 16-byte buffer")
    at = m.expect(r"\*\*\* stack smashing detected: the stack canary of the function at (0x[0-9a-f]+) was overwritten")
    m.expect(r"\*\*\* Kernel panic on hart 0: stack smashing detected\r?\n    at libs/stackprot/src/fail\.cpp:\d+")
    m.expect(r"Backtrace:\r?\n(    #\d+ +0x[0-9a-f]{16}\r?\n){3,}")
    m.expect(rf"\*\*\* stopping \(exit status {PANIC_STATUS}\)")
    assert m.wait_exit() == PANIC_STATUS
    # The reported address (the failed check) is in the function whose
    # buffer overflowed, and so is a frame of the backtrace.
    where = symbolize(image.elf, f"    #0  {at.group(1).decode()}\n")
    assert "do_stack_smash" in where, where
    backtrace = symbolize(image.elf, m.serial_text())
    assert "__stack_chk_fail" in backtrace and "do_stack_smash" in backtrace, backtrace
    assert "survived" not in m.serial_text()


def test_ubsan_report_mode_reports_once_and_continues(build, machine):
    image = build("crashtest", fragments=HARDENING, extra=REPORT_MODE)
    assert "CONFIG_UBSAN_MODE_REPORT=y" in image.config
    line = source_line("base::opaque(INT_MAX) + 1")
    m = machine(image, append="crash=ubsan-overflow").start()
    m.expect(rf"\*\*\* UBSan: {UB_KINDS['ubsan-overflow'][0]}\r?\n    at apps/crashtest/main\.cpp:{line}:\d+")
    # The failing site ran twice: one report, one repeat, and the
    # program went on with the wrapped value.
    m.expect(r"crashtest: INT_MAX \+ 1 gave -2147483648")
    m.expect(r"crashtest: ubsan: 1 report\(s\), 1 repeat\(s\)")
    m.expect(r"crashtest: survived 'ubsan-overflow'")
    assert m.wait_exit() == 3
    text = m.serial_text()
    assert text.count("*** UBSan:") == 1
    assert "Kernel panic" not in text


@pytest.mark.timeout(600)
def test_ubsan_report_mode_in_kernel_tests(build, machine):
    """The ubsan ktest cases that need report mode (once per location, the
    interrupts-off path) run there instead of being skipped."""
    image = build("ktest", fragments=HARDENING, extra=REPORT_MODE)
    m = machine(image, icount=True).start()  # timed cases judge the kernel, not the host (test_ktest.py)
    assert m.wait_exit(timeout=360) == 0  # every suite (the network ones too), hardened; a hang detector
    results = ktap.parse(m.serial_text())
    ubsan = {n: r for n, r in results.items() if r.suite == "ubsan"}
    assert ubsan, "no ubsan cases ran"
    for name, r in ubsan.items():
        assert r.ok and not r.skipped, f"{name}: {r.diagnostics or r.skip_reason}"
    assert "Kernel panic" not in m.serial_text()


@pytest.mark.parametrize("kind,library", [
    ("ubsan-overflow", "CONFIG_LIB_UBSAN"),
    ("stack-smash", "CONFIG_LIB_STACKPROT"),
])
def test_kinds_need_their_library(build, machine, kind, library):
    m = machine(build("crashtest"), append=f"crash={kind}").start()
    m.expect(rf"crashtest: not built with {library}")
    assert m.wait_exit() == 2


def test_helloworld_runs_clean_hardened(build, machine):
    image = build("helloworld", fragments=HARDENING)
    m = machine(image).start()
    m.expect(r"stackprot: canary seeded from /chosen/rng-seed \(32 bytes\) and the time counters")
    libraries = m.expect(r"libraries:([^\r\n]*)\r?\n").group(1).decode().split()
    assert "ubsan" in libraries and "stackprot" in libraries
    m.expect(r"Goodbye\.")
    assert m.wait_exit() == 0
    assert_clean(m.serial_text())


@pytest.mark.timeout(600)
def test_ktest_passes_hardened(build, machine):
    """Every in-kernel test of every library, with all of the kernel under
    UBSan (panic mode) and stack canaries: no report, no failure."""
    image = build("ktest", fragments=HARDENING)
    m = machine(image, icount=True).start()  # timed cases judge the kernel, not the host (test_ktest.py)
    assert m.wait_exit(timeout=360) == 0  # every suite (the network ones too), hardened; a hang detector
    text = m.serial_text()
    passed, failed, _ = ktap.summary(text)
    assert failed == 0 and passed > 0
    results = ktap.parse(text)
    for suite in ("ubsan", "stackprot"):
        cases = [r for r in results.values() if r.suite == suite]
        assert cases and all(r.ok for r in cases), suite
    assert results["stackprot.canary_is_seeded_and_shaped"].ok
    assert_clean(text)


def test_canary_differs_at_every_boot(build, machine):
    """Read from outside (QMP), never printed by the kernel: non-zero, low
    byte zero, and new at each boot: two QEMU starts, and a reset."""
    image = build("echo", fragments=HARDENING)
    address = symbol_address(image.elf, "__stack_chk_guard")

    def canary(m):
        m.expect(r"echo: ready")
        out = m.qmp.hmp(f"xp /1gx {address:#x}")
        return int(re.search(r":\s*0x([0-9a-f]+)", out).group(1), 16)

    canaries = []
    for boot in range(2):
        m = machine(image, name=f"echo-boot{boot}").start()
        canaries.append(canary(m))
        if boot == 0:
            m.qmp.execute("system_reset")
            canaries.append(canary(m))
        m.kill()
    for c in canaries:
        assert c != 0 and c & 0xff == 0
    assert len(set(canaries)) == len(canaries)


def test_every_object_is_instrumented_but_the_runtimes(build):
    """KERNEL_CXXFLAGS-y reaches every object of the image; the runtimes opt
    out of their own instrumentation by per-file flags that come last."""
    image = build("crashtest", fragments=HARDENING)
    cmds = glob.glob(os.path.join(image.build_dir, "obj", "**", "*.o.cmd"), recursive=True)
    assert len(cmds) > 10
    opt_outs = {
        "libs/ubsan/src/handlers.o.cmd": "-fno-sanitize=all",
        "libs/ubsan/src/describe.o.cmd": "-fno-sanitize=all",
        "libs/stackprot/src/canary.o.cmd": "-fno-stack-protector",
        "libs/stackprot/src/fail.o.cmd": "-fno-stack-protector",
    }
    for cmd in cmds:
        with open(cmd) as f:
            args = f.read().split()
        assert "-fsanitize=undefined" in args and "-fstack-protector-strong" in args, cmd
        rel = os.path.relpath(cmd, os.path.join(image.build_dir, "obj"))
        if rel in opt_outs:
            flag = opt_outs[rel]
            on = "-fsanitize=undefined" if flag == "-fno-sanitize=all" else "-fstack-protector-strong"
            assert args.index(on) < len(args) - 1 - args[::-1].index(flag), cmd

    def undefined(obj):
        return subprocess.run([CROSS + "nm", "-u", os.path.join(image.build_dir, "obj", obj)],
                              capture_output=True, text=True, check=True).stdout

    assert "__ubsan_handle" not in undefined("libs/ubsan/src/handlers.o")
    assert "__ubsan_handle" not in undefined("libs/ubsan/src/describe.o")
    assert "__stack_chk_fail" not in undefined("libs/stackprot/src/canary.o")
    assert "__stack_chk_fail" in undefined("apps/crashtest/main.o")
    assert "__ubsan_handle" in undefined("apps/crashtest/main.o")
