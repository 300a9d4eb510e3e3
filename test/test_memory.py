"""Memory bugs are caught by the allocator that owns the memory: each ends
in a report naming the problem and a failing exit (70), never silent
corruption."""
import pytest
from harness import PANIC_STATUS

FAULTS = {
    "buddy-double-free": (r"mm-buddy: free_pages\(0x[0-9a-f]+\): block of order \d+ is already free",
                          r"mm-buddy: double free"),
    "buddy-foreign": (r"mm-buddy: free_pages\(0x[0-9a-f]+\): not a page this allocator manages",
                      r"mm-buddy: free of a foreign pointer"),
    "kfree-double": (r"kfree\(0x[0-9a-f]+\): double free", r"kmalloc: invalid kfree"),
    "kfree-foreign": (r"kfree\(0x[0-9a-f]+\): not a pointer kmalloc returned", r"kmalloc: invalid kfree"),
    "pool-use-after-free": (r"mm-pool memfault-a: object 0x[0-9a-f]+ was written after it was freed "
                            r"\(byte 40 is 0x01, not 0x6b\)", r"mm-pool: use after free"),
    "heap-overflow": (r"kfree\(0x[0-9a-f]+\): heap buffer overflow: byte 0 written past the 100 bytes requested",
                      r"kmalloc: heap buffer overflow"),
    "wrong-pool": (r"mm-pool memfault-b: free\(0x[0-9a-f]+\): not an object of this pool", r"mm-pool: invalid free"),
    "irq-alloc": (r"VERIFY failed: !arch::in_interrupt\(\)", r"at libs/mm-pool/src/kmalloc\.cpp:\d+"),
    "write-text": (r"\*\*\* store/AMO page fault \(scause 0xf\) on hart 0 in thread 'boot'",
                   r"stval is in kernel text \(read-only\)"),
    "null-deref": (r"\*\*\* load page fault \(scause 0xd\)", r"stval is in page zero \(a null pointer\?\)"),
    "stack-overflow": (r"\*\*\* stack overflow in thread 'boot' on hart 0: sp 0x[0-9a-f]+ is below the stack limit",
                       r"stval is in the guard page below the boot stack"),
    "guard-stack": (r"\*\*\* stack overflow in thread 'memfault-worker' on hart 0",
                    r"stval is in unmapped memory \(a guard page, or no mapping\)"),
}


@pytest.fixture(scope="module")
def memfault():
    from harness import build_image
    return build_image("memfault")


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_memory_bug_is_reported(memfault, machine, kind):
    report, verdict = FAULTS[kind]
    m = machine(memfault, append=f"fault={kind}").start()
    m.expect(rf"memfault: fault={kind}")
    m.expect(report)
    m.expect(verdict)
    m.expect(r"Backtrace:")
    assert m.wait_exit() == PANIC_STATUS
    assert "survived" not in m.serial_text()
