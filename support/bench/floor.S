/* The floor for wall-clock boot figures: a "kernel" that exits QEMU through
 * sifive_test on its first instructions. Whatever QEMU and OpenSBI cost, this
 * costs too; the difference is ours. */
    .section .text
    .global _start
_start:
    li      t0, 0x100000
    li      t1, 0x5555
    sw      t1, 0(t0)
1:  wfi
    j       1b
