/* int __clzdi2(unsigned long x): the number of leading zero bits of x,
 * which GCC calls for __builtin_clz/__builtin_clzll because rv64gc has no
 * clz instruction (Zbb has one). x = 0 is undefined, as for the builtins.
 *
 * Replaces libgcc's generic version (a byte-at-a-time loop, then a table
 * lookup: 43 instructions for the scheduler's 32-bit priority bitmaps,
 * once per pick) with a branchy binary search: 16 to 26 instructions, 18
 * to 26 for a 32-bit value. The linker takes this definition and never
 * pulls libgcc's member for it. Integer registers only: using the FPU
 * (fcvt, then the exponent) would be shorter but would make FS Dirty and
 * cost FP saves at the next switch (switch.S).
 * Tested against a bit-by-bit count in arch.clz_matches_a_bit_count. */
    .section .text
    .balign 4
    .global __clzdi2
    .type __clzdi2, @function
__clzdi2:
    mv      a1, a0
    li      a0, 0
    srli    t0, a1, 32
    bnez    t0, 1f
    addi    a0, a0, 32
    slli    a1, a1, 32
1:  srli    t0, a1, 48
    bnez    t0, 2f
    addi    a0, a0, 16
    slli    a1, a1, 16
2:  srli    t0, a1, 56
    bnez    t0, 3f
    addi    a0, a0, 8
    slli    a1, a1, 8
3:  srli    t0, a1, 60
    bnez    t0, 4f
    addi    a0, a0, 4
    slli    a1, a1, 4
4:  srli    t0, a1, 62
    bnez    t0, 5f
    addi    a0, a0, 2
    slli    a1, a1, 2
5:  srli    t0, a1, 63          /* the top bit: 1 more leading zero if clear */
    xori    t0, t0, 1
    add     a0, a0, t0
    ret
    .size __clzdi2, . - __clzdi2
