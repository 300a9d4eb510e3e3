"""Every in-kernel test case is its own pytest test.

Collection boots the ktest image with `ktest.list` to learn the case names;
each variant (timer through Sstc, and through SBI) then runs the whole image
once per worker and each case test reads its own KTAP line. The hart-count
variants (smp2, smp4) run only the cases their ktest.filter selects (the
smp suite and the per-hart checks of other suites), so they add little
time; the default variants run everything on one hart.

The one-hart variants run under `-icount shift=0`: guest time is then a
function of the instructions executed, so the cases that measure time (EDF
deadlines and budgets, sleep accuracy, callout grids) judge the kernel, not
the load on the host or TCG's translation pauses. The multi-hart variants
run without it: under -icount QEMU runs the harts round robin on one host
thread, and a hart spinning on another's progress stalls."""
import fnmatch
import os
import re

import pytest

from harness import Machine, build_image, ktap

# name: (fragments, ktest.filter or None for every case[, extra QEMU arguments])
SMP_FILTER = ("smp.*,sched_smp.*,mutex.*,semaphore.*,condvar.*,rwlock.*,barrier.*,sync_stress.*,futex.*,lockdep.*,"
              "mailbox.*,msgqueue.*,mmu.shootdowns_*,plat.usable_harts_*,arch.this_hart_*,"
              "netdev.packet_*,netdev.pool_*,netdev.pair_*,netdev.counters_*,netdev.runts_*,netdev.full_*,"
              "eth_arp.*,ipv4.*,icmp.echo_*,icmp.port_*,udp.*,dns.*,tcp.*")
VIRTIO_ARGS = ("-global", "virtio-mmio.force-legacy=false",
               "-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56",
               "-netdev", "user,id=n1,restrict=on", "-device", "virtio-net-device,netdev=n1")
VARIANTS = {
    "sstc": ((), None),
    "sbi-timer": (("configs/nosstc.config",), None),
    "smp2": (("configs/smp2.config",), SMP_FILTER),
    "smp4": (("configs/smp4.config",), SMP_FILTER),
    # Real virtio-net devices (modern interface: QEMU's virtio-mmio default
    # is legacy), so the virtio and virtio_net cases run against QEMU's
    # implementation instead of skipping: eth0 for the driver, and a second
    # one for the transport cases to claim. No -icount: frames from outside
    # (SLIRP's ARP reply) and -icount sleep=off can wedge QEMU 7.2's vCPU
    # (docs/libs/netdev.md), and these cases judge no timing.
    "virtio": ((), "virtio.*,virtio_net.*,netdev.*", VIRTIO_ARGS),
}


def selected(variant, case):
    pattern = VARIANTS[variant][1]
    return pattern is None or any(fnmatch.fnmatchcase(case, g) for g in pattern.split(","))
_runs = {}


def list_cases():
    """The image's case names, cached beside it: every xdist worker collects,
    and a run filtered to other tests should not boot ktest to do so."""
    image = build_image("ktest")
    cache = os.path.join(image.build_dir, "ktest-cases.txt")
    if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(image.elf):
        with open(cache) as f:
            return f.read().split()
    with Machine(image, append="ktest.list") as m:
        m.start()
        m.expect(r"ktest-list-end", timeout=60)
        assert m.wait_exit() == 0
        cases = [line.split()[1] for line in m.serial_text().splitlines() if line.startswith("ktest-case ")]
    tmp = f"{cache}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(cases) + "\n")
    os.replace(tmp, cache)
    return cases


def pytest_generate_tests(metafunc):
    if "ktest_case" in metafunc.fixturenames:
        cases = list_cases()
        params = [(v, c) for v in VARIANTS for c in cases if selected(v, c)]
        metafunc.parametrize("variant,ktest_case", params, ids=[f"{v}:{c}" for v, c in params])


def run_variant(variant):
    if variant not in _runs:
        fragments, pattern, *extra = VARIANTS[variant]
        image = build_image("ktest", fragments=fragments)
        append = f"ktest.filter={pattern}" if pattern else None
        with Machine(image, name=f"ktest-{variant}", append=append, icount=not pattern,
                     extra_args=extra[0] if extra else ()) as m:
            m.start()
            try:
                # A hang detector, not a time limit: on 2 host cores shared with
                # other QEMUs (pytest -n), the 4-hart stress suites can take minutes.
                status = m.wait_exit(timeout=360)
            except AssertionError:
                status = None
            text = m.serial_text()
        _runs[variant] = (status, text, ktap.parse(text))
    return _runs[variant]


@pytest.mark.timeout(600)  # the first case of a variant boots it (run_variant)
def test_ktest(variant, ktest_case):
    status, text, results = run_variant(variant)
    result = results.get(ktest_case)
    if result is None:
        pytest.fail(f"{ktest_case}: no KTAP result (kernel exit status {status}); console tail:\n{text[-4000:]}")
    if result.skipped:
        pytest.skip(result.skip_reason)
    assert result.ok, "\n".join(result.diagnostics)


@pytest.mark.timeout(600)
def test_ktest_verdict_is_the_exit_status():
    for variant in VARIANTS:
        status, text, results = run_variant(variant)
        failed = [n for n, r in results.items() if not r.ok]
        assert status == (1 if failed else 0)
        assert ktap.summary(text) is not None
        assert text.count("KTAP version 1") == 1 + len({r.suite for r in results.values()})


def test_ktest_filter_runs_only_matching_cases():
    image = build_image("ktest")
    with Machine(image, append="ktest.filter=base_string.*,fdt.parses_*") as m:
        m.start()
        assert m.wait_exit(timeout=60) == 0
        results = ktap.parse(m.serial_text())
    assert results and all(n.startswith("base_string.") or n == "fdt.parses_boot_tree" for n in results)
    assert "fdt.parses_boot_tree" in results


@pytest.mark.parametrize("fail_fast", [False, True], ids=["all", "fail-fast"])
def test_a_failing_case_fails_the_run(fail_fast, machine):
    extra = ["CONFIG_KTEST_DEMO_FAILURE=y"] + (["CONFIG_KTEST_FAIL_FAST=y"] if fail_fast else [])
    image = build_image("ktest", extra=extra)
    m = machine(image, icount=True).start()  # see the module docstring
    assert m.wait_exit(timeout=120) == 1
    text = m.serial_text()
    results = ktap.parse(text)
    assert not results["ktest.demo_failure"].ok
    assert any("6 * 7 == 43" in d for d in results["ktest.demo_failure"].diagnostics)
    assert "not ok" in text and re.search(r"^not ok \d+ ktest$", text, re.M)
    passed, failed, _ = ktap.summary(text)
    assert failed == 1
    plan = int(re.search(r"^1\.\.(\d+)$", text, re.M).group(1))
    suites_reported = len(re.findall(r"^(?:not )?ok \d+ \S+$", text, re.M))
    if fail_fast:
        assert "stopped at the first failure" in text
        assert suites_reported < plan  # the run ended early, but the suite it stopped in was closed
    else:
        assert suites_reported == plan
