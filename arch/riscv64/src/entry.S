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

.Lpark:
    wfi
    j       .Lpark

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
    ld      sp, 0(a1)               /* SecondaryStart::stack_top */
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
