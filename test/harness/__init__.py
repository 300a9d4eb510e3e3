"""Tessera test harness: build images, boot them in QEMU, talk to them."""
from .build import Image, build_image, BuildError, ROOT
from .machine import Machine, ExpectTimeout
from .qmp import QMPClient, QMPError
from . import ktap

__all__ = ["Image", "build_image", "BuildError", "ROOT", "Machine", "ExpectTimeout",
           "QMPClient", "QMPError", "ktap"]
