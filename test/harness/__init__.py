"""Tessera test harness: build images, boot them in QEMU, talk to them."""
from .build import Image, build_image, BuildError, ROOT
from .machine import Machine, ExpectTimeout
from .qmp import QMPClient, QMPError
from . import ktap

# The exit status of a kernel panic or an unhandled exception
# (plat::kExitPanic in plat/qemu-virt/include/plat/power.hpp).
PANIC_STATUS = 70

__all__ = ["Image", "build_image", "BuildError", "ROOT", "Machine", "ExpectTimeout",
           "QMPClient", "QMPError", "ktap", "PANIC_STATUS"]
