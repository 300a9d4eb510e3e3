/*
 * Kernel entry. OpenSBI enters here in S-mode with a0 = hart id and
 * a1 = device tree address. QEMU jumps to the lowest loaded address rather
 * than the ELF entry, so the linker script puts .text.entry first.
 */
    .section .text.entry, "ax"
    .global _start
_start:
    csrw    sie, zero
    csrci   sstatus, 2              /* SIE off until traps are set up */
    rdtime  t0                      /* boot benchmarks: time and */
    rdinstret t3                    /* instruction count at entry */

    /* One hart boots the kernel; any other that arrives here parks until
     * the SMP library starts it through SBI HSM. */
    la      t1, boot_lottery
    li      t2, 1
    amoswap.w t2, t2, (t1)
    bnez    t2, .Lpark

    la      sp, __boot_stack_top
    /* Clear .bss with 8-byte stores (the linker script aligns both ends).
     * The boot stack lives outside .bss and is not cleared. */
    la      t1, __bss_start
    la      t2, __bss_end
1:  bgeu    t1, t2, 2f
    sd      zero, 0(t1)
    addi    t1, t1, 8
    j       1b
2:
    la      t1, g_boot_entry_time
    sd      t0, 0(t1)
    sd      t3, 8(t1)               /* g_boot_entry_instret */

    /* FP on (FS = Initial), rounding mode and flags cleared. */
    li      t1, (1 << 13)
    csrs    sstatus, t1
    fscsr   zero

    la      t1, trap_vector
    csrw    stvec, t1

    /* Zero fp and ra so backtraces stop here. */
    mv      s0, zero
    mv      ra, zero
    call    tessera_boot            /* (hart id, dtb): never returns */

    /* A hart that loses the lottery is one the firmware let through: a
     * stray (a firmware that releases every hart), or one that hart_start
     * sent here. OpenSBI 1.1 (QEMU 7.2's) sets a hart's state to
     * START_PENDING before it writes the start address and argument, so a
     * hart that sees that state early leaves with the old ones: the
     * kernel's first address, this one, and the DTB. Such a hart once
     * parked here for good and smp.start timed out. Both kinds wait for a
     * start block, as _start_secondary does. */
.Lpark:
    la      t1, tessera_late_kernel_entries
    li      t2, 1
    amoadd.w zero, t2, (t1)
    tail    .Lawait_start_block

/*
 * Secondary harts, started through SBI HSM hart_start (arch::start_secondary):
 * a0 = hart id, a1 = opaque = the arch::SecondaryStart block (stack_top at
 * offset 0). The firmware enters in S-mode with translation off and
 * sstatus.SIE clear. tp is set by the C++ side (init_hart) before anything
 * can trap on purpose; a fault before that has no per-hart data to report
 * with.
 */
    .section .text, "ax"
    .global _start_secondary
_start_secondary:
    csrw    sie, zero
    csrci   sstatus, 2
    /* The block is looked up by hart id (a0) in tessera_start_blocks, not
     * taken from a1: a firmware that races its own hart_start can pass a
     * stale argument (see .Lpark). Published before hart_start, so it is
     * there whenever the firmware lets the hart go; the loop only holds a
     * stray that nobody started (or an id of 64 and above, which
     * start_secondary refuses) asleep. */
.Lawait_start_block:
    li      t1, 64
    bgeu    a0, t1, .Lsleep
    la      t1, tessera_start_blocks
    slli    t2, a0, 3
    add     t1, t1, t2
1:  fence   r, r                    /* the firmware's state before the slot */
    ld      a1, 0(t1)
    bnez    a1, 2f
    wfi
    j       1b
.Lsleep:
    wfi
    j       .Lsleep
2:  ld      sp, 0(a1)               /* SecondaryStart::stack_top */
    li      t1, (1 << 13)           /* FP on (FS = Initial), as on the boot hart */
    csrs    sstatus, t1
    fscsr   zero
    la      t1, trap_vector
    csrw    stvec, t1
    mv      s0, zero                /* backtraces stop here */
    mv      ra, zero
    call    tessera_secondary_entry /* (hart id, block): never returns */
1:  wfi
    j       1b

    .section .data
    .balign 8
boot_lottery:
    .word   0
    .word   0
    .global g_boot_entry_time
    .global g_boot_entry_instret
g_boot_entry_time:
    .dword  0
g_boot_entry_instret:
    .dword  0
