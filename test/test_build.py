"""The build behaves as documented: targets, fragments, incremental rebuilds,
full command lines with V=1, outputs only under the build directory."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from harness import ROOT


def make(*args, check=True):
    r = subprocess.run(["make", "-C", ROOT, "NO_DEPS=1", *args], capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_help_lists_targets_apps_and_libraries():
    out = make("help").stdout
    for target in ["run", "gdb", "defconfig", "menuconfig", "olddefconfig", "savedefconfig", "boot-order",
                   "test", "bench", "bench-ab", "clean"]:
        assert re.search(rf"^\s+{target}\s", out, re.M), target
    assert re.search(r"Apps: .*crashtest.*echo.*helloworld.*ktest", out)
    assert re.search(r"Libraries: .*base.*fdt.*klog.*ktest", out)


def test_fragments_merge_and_reach_the_compiler(tmp_path):
    build = str(tmp_path / "b")
    make("APP=helloworld", f"BUILD={build}", "FRAGMENTS=configs/size.config configs/debug.config", "V=1")
    config = open(os.path.join(build, ".config")).read()
    # debug.config comes last and wins the optimization choice.
    assert "CONFIG_OPTIMIZE_OG=y" in config and "CONFIG_KLOG_CONSOLE_LEVEL=7" in config
    cmd = open(os.path.join(build, "obj/libs/base/src/format.o.cmd")).read()
    assert " -Og " in cmd


def test_incremental_and_command_line_rebuilds(tmp_path):
    build = str(tmp_path / "b")
    make("APP=helloworld", f"BUILD={build}")
    again = make("APP=helloworld", f"BUILD={build}").stdout
    assert "CXX" not in again and "LD" not in again, again
    # A changed option changes the command line of every object: all rebuild.
    r = make("APP=helloworld", f"BUILD={build}", "FRAGMENTS=configs/size.config").stdout
    assert r.count("CXX") >= 10 and " LD " in r, r
    assert " -Os " in open(os.path.join(build, "obj/libs/klog/src/klog.o.cmd")).read()
    # Touching one source rebuilds that object only.
    time.sleep(1.1)
    os.utime(os.path.join(ROOT, "libs/base/src/string.cpp"))
    r = make("APP=helloworld", f"BUILD={build}", "FRAGMENTS=configs/size.config").stdout
    assert re.findall(r"CXX\s+(\S+)", r) == ["libs/base/src/string.cpp"], r


def test_verbose_shows_full_commands_default_is_short(tmp_path):
    build = str(tmp_path / "b")
    quiet = make("APP=helloworld", f"BUILD={build}").stdout
    assert "riscv64-linux-gnu-g++" not in quiet
    assert re.search(r"^  CXX     arch/riscv64/src/entry.S$", quiet, re.M)
    make("clean", f"BUILD={build}")
    loud = make("APP=helloworld", f"BUILD={build}", "V=1").stdout
    assert re.search(r"riscv64-linux-gnu-g\+\+ -std=c\+\+20 .* -c -o \S+/entry.o arch/riscv64/src/entry.S", loud)


def test_outputs_stay_in_the_build_directory(tmp_path):
    build = tmp_path / "b"
    status = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored"], capture_output=True,
                            text=True).stdout
    make("APP=echo", f"BUILD={build}")
    after = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--ignored"], capture_output=True,
                           text=True).stdout
    assert after == status
    for name in ["echo.elf", "echo.bin", "echo.map", "qemu.json", "run.sh", "compile_commands.json",
                 "include/generated/autoconf.h", "gen/linker.ld", "gen/init_table.cpp", "gen/manifest.cpp"]:
        assert (build / name).exists(), name


def test_savedefconfig_round_trip(tmp_path):
    build = str(tmp_path / "b")
    make("APP=ktest", f"BUILD={build}", "defconfig")
    make("APP=ktest", f"BUILD={build}", "savedefconfig")
    saved = open(os.path.join(build, "defconfig")).read()
    assert "CONFIG_LIB_KTEST=y" not in saved  # selected by the app: not needed in a minimal config
    with open(os.path.join(build, ".config"), "a") as f:
        f.write("CONFIG_KLOG_RING_SIZE=4096\n")
    make("APP=ktest", f"BUILD={build}", "olddefconfig")
    make("APP=ktest", f"BUILD={build}", "savedefconfig")
    assert "CONFIG_KLOG_RING_SIZE=4096" in open(os.path.join(build, "defconfig")).read()


def test_boot_order_is_sorted_and_printed(tmp_path):
    out = make("APP=helloworld", f"BUILD={tmp_path / 'b'}", "boot-order").stdout
    steps = re.findall(r"^\s+\d+\. (\S+)", out, re.M)
    assert steps.index("plat.irq") < steps.index("plat.console_rx")
    assert "tessera::plat::init_console_rx()" in out


def test_gdb_target_waits_for_a_debugger(tmp_path):
    build = str(tmp_path / "b")
    make("APP=helloworld", f"BUILD={build}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["make", "-C", ROOT, "NO_DEPS=1", "APP=helloworld", f"BUILD={build}", "gdb"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "GDB_PORT": str(port)}, start_new_session=True)
    try:
        lines = []
        while not any("target remote" in l for l in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert any(f"gdb-multiarch {build}/helloworld.elf -ex 'target remote 127.0.0.1:{port}'" in l
                   for l in lines), lines
        deadline = time.time() + 10
        while True:  # the gdbstub accepts connections; the guest stays halted
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.1)
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_menuconfig_shows_the_library_menu(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    build = str(tmp_path / "b")
    child = pexpect.spawn("make", ["-C", ROOT, "NO_DEPS=1", "APP=helloworld", f"BUILD={build}", "menuconfig"],
                          dimensions=(40, 120), timeout=30, encoding="utf-8",
                          env={**os.environ, "TERM": "xterm"})
    child.expect("Tessera configuration")
    child.expect("Libraries")
    child.send("Q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert os.path.exists(os.path.join(build, ".config"))


def test_make_run_boots_the_app_on_the_terminal(tmp_path):
    r = subprocess.run(["make", "-C", ROOT, "NO_DEPS=1", "APP=helloworld", f"BUILD={tmp_path / 'b'}", "run"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RUN     helloworld (Ctrl-A X quits)" in r.stdout
    assert "Hello from Tessera! app=helloworld" in r.stdout


def test_defconfig_then_the_same_fragments_reapplies_them(tmp_path):
    build = str(tmp_path / "b")
    make("APP=helloworld", f"BUILD={build}", "FRAGMENTS=configs/size.config")
    make("APP=helloworld", f"BUILD={build}", "defconfig")
    assert "CONFIG_OPTIMIZE_OS=y" not in open(os.path.join(build, ".config")).read()
    make("APP=helloworld", f"BUILD={build}", "FRAGMENTS=configs/size.config")
    assert "CONFIG_OPTIMIZE_OS=y" in open(os.path.join(build, ".config")).read()


def test_debug_fragment_turns_on_heap_checks(tmp_path):
    build = str(tmp_path / "b")
    make("APP=memfault", f"BUILD={build}", "FRAGMENTS=configs/debug.config", "defconfig")
    config = open(os.path.join(build, ".config")).read()
    assert "CONFIG_DEBUG_KERNEL=y" in config
    assert "CONFIG_MM_POISON=y" in config and "CONFIG_MM_REDZONE=y" in config
    make("APP=helloworld", f"BUILD={tmp_path / 'h'}", "FRAGMENTS=configs/debug.config", "defconfig")  # no heap: fine


def test_bench_ab_compares_two_builds_and_refuses_a_wrong_one(tmp_path):
    """make bench-ab: one pair of the same tcpecho build against itself
    gives every figure for both and a B/A ratio per figure; a directory
    that holds no build of tcpecho is refused with a clear message."""
    from harness import build_image
    image = build_image("tcpecho")
    out = tmp_path / "ab.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "support", "bench_ab.py"), image.build_dir,
                        image.build_dir, "--pairs", "1", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    # The B/A column reads "-" where A's figure is 0: the guest's work is
    # the vCPU thread's time less the guest's idle time, clamped at 0, and
    # on a host this busy (the suite's other machines) the vCPU thread may
    # spend the guest's idle time off a CPU.
    for way in ("receive", "send"):
        for figure in ("mb_s", "idle", "guest_work_ms_per_mb", "slirp_ms_per_mb"):
            assert re.search(rf"^{way}\.{figure}\s+[\d.]+\s+[\d.]+\s+([\d.]+|-)$", r.stdout, re.M), (figure, r.stdout)
    assert re.search(r"^A: send guest work / SLIRP [\d.]+", r.stdout, re.M)
    runs = json.loads(out.read_text())
    assert len(runs["runs_a"]) == len(runs["runs_b"]) == 1
    for run in runs["runs_a"] + runs["runs_b"]:
        assert run["connections_per_s"] > 0
        for way in ("receive", "send"):
            assert run[f"{way}.mb_s"] > 0 and run[f"{way}.slirp_ms_per_mb"] > 0, run
            assert 0 <= run[f"{way}.idle"] <= 1 and run[f"{way}.guest_work_ms_per_mb"] >= 0, run
    wrong = make("bench-ab", f"A={image.build_dir}", f"B={tmp_path}", check=False)
    assert wrong.returncode != 0 and "qemu.json" in wrong.stdout + wrong.stderr
    usage = make("bench-ab", check=False)
    assert usage.returncode != 0 and "usage: make bench-ab" in usage.stdout + usage.stderr
