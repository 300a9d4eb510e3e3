"""Fixtures shared by the scenario suites.

    build(app, fragments=(), extra=())  -> Image, built through the Makefile, cached
    machine(image, ...)                 -> Machine, killed at teardown; its console log,
                                           registers and symbolized backtrace are attached
                                           to the report of a failing test
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))

from harness import Machine, build_image  # noqa: E402
from symbolize import symbolize  # noqa: E402


@pytest.fixture
def build():
    return build_image


@pytest.fixture
def machine(request):
    machines = []
    request.node.tessera_machines = machines

    def make(image, **kwargs):
        m = Machine(image, **kwargs)
        machines.append(m)
        return m

    yield make
    for m in machines:
        m.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for m in getattr(item, "tessera_machines", []):
        for title, text in m.artefacts().items():
            if title == "serial log" and "Backtrace:" in text:
                text = symbolize(m.image.elf, text)
            report.sections.append((f"{m.name}: {title}", text))
