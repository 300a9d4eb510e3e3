"""A bad configuration stops with one clear message naming the problem and
the fix: no Python traceback, no make backtrace, no half-built image."""
import os
import subprocess

import pytest

from harness import ROOT


def make(*args, cwd=ROOT):
    return subprocess.run(["make", "-C", cwd, "NO_DEPS=1", *args], capture_output=True, text=True, timeout=300)


def assert_clean_failure(result, *phrases):
    assert result.returncode != 0, result.stdout
    err = result.stderr
    for phrase in phrases:
        assert phrase in err, err
    assert "Traceback" not in err, err
    assert err.count("error") <= 3, err


@pytest.fixture
def build_dir(tmp_path):
    return str(tmp_path / "build")


def write_fragment(tmp_path, text):
    path = tmp_path / "bad.config"
    path.write_text(text)
    return str(path)


def test_unknown_app_lists_the_real_ones(build_dir):
    r = make("APP=nope", f"BUILD={build_dir}")
    assert_clean_failure(r, "unknown app 'nope'", "available apps:", "helloworld", "ktest")
    assert not os.path.exists(build_dir)


def test_undefined_symbol_in_a_fragment(tmp_path, build_dir):
    frag = write_fragment(tmp_path, "# a typo\nCONFIG_LIB_KTESTT=y\n")
    r = make("APP=helloworld", f"BUILD={build_dir}", f"FRAGMENTS={frag}")
    assert_clean_failure(r, "bad.config:2: CONFIG_LIB_KTESTT is not a known symbol", "check the spelling")
    assert not os.path.exists(os.path.join(build_dir, "helloworld.elf"))
    assert not os.path.exists(os.path.join(build_dir, ".config"))


def test_unmet_dependency_names_what_to_enable(tmp_path, build_dir):
    frag = write_fragment(tmp_path, "CONFIG_KTEST_FAIL_FAST=y\n")
    r = make("APP=helloworld", f"BUILD={build_dir}", f"FRAGMENTS={frag}")
    assert_clean_failure(r, "CONFIG_KTEST_FAIL_FAST=y cannot be set", "depends on LIB_KTEST",
                         "enable CONFIG_LIB_KTEST as well")
    assert not os.path.exists(os.path.join(build_dir, "helloworld.elf"))


def test_disabling_a_selected_library_says_who_selects_it(tmp_path, build_dir):
    frag = write_fragment(tmp_path, "# CONFIG_LIB_KLOG is not set\n")
    r = make("APP=helloworld", f"BUILD={build_dir}", f"FRAGMENTS={frag}")
    assert_clean_failure(r, "CONFIG_LIB_KLOG=n cannot be set: it is selected by ARCH_RISCV64")


def test_out_of_range_value(tmp_path, build_dir):
    frag = write_fragment(tmp_path, "CONFIG_PLAT_HARTS=99\n")
    r = make("APP=helloworld", f"BUILD={build_dir}", f"FRAGMENTS={frag}")
    assert_clean_failure(r, "CONFIG_PLAT_HARTS=99 is out of range")


def test_missing_fragment_file(build_dir):
    r = make("APP=helloworld", f"BUILD={build_dir}", "FRAGMENTS=configs/no-such.config")
    assert_clean_failure(r, "config fragment 'configs/no-such.config' does not exist")


def test_missing_toolchain_names_the_package(build_dir):
    r = make("APP=helloworld", f"BUILD={build_dir}", "CROSS_COMPILE=/nonexistent/riscv64-linux-gnu-")
    assert_clean_failure(r, "cross compiler '/nonexistent/riscv64-linux-gnu-g++' not found",
                         "apt-get install g++-riscv64-linux-gnu")
    assert not os.path.exists(os.path.join(build_dir, "helloworld.elf"))


def test_hand_edited_config_with_a_typo_is_caught(build_dir):
    assert make("APP=helloworld", f"BUILD={build_dir}", "defconfig").returncode == 0
    with open(os.path.join(build_dir, ".config"), "a") as f:
        f.write("CONFIG_NO_SUCH_OPTION=y\n")
    r = make("APP=helloworld", f"BUILD={build_dir}")
    assert_clean_failure(r, "CONFIG_NO_SUCH_OPTION is not a known symbol")
    assert not os.path.exists(os.path.join(build_dir, "helloworld.elf"))
