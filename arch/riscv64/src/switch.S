/* Kernel thread switch: save callee-saved state into *a0, load *a1.
 * Layout: arch/context.hpp Context.
 *
 * The FP half is lazy. sstatus.FS is Clean after every switch that touched
 * FP state, and the hardware sets it to Dirty when the running thread
 * writes an FP register or fcsr, so on the way out:
 *   - FS Dirty: save fs0-fs11 and fcsr, mark the Context as holding FP
 *     state (fp_saved), set FS Clean;
 *   - FS Clean (or Initial, on a hart's start-up context): the Context
 *     already holds this thread's FP state, or the thread never wrote any.
 * On the way in, a Context with FP state is loaded and FS set back to
 * Clean (the loads made it Dirty). One without gets fcsr = 0 (round to
 * nearest, no flags) if fcsr is not 0 already, so no thread inherits
 * another's rounding mode or exception flags; its FP registers hold
 * whatever they hold, which no code can depend on. Invariant on every
 * hart: while FS is Clean, fs0-fs11 and fcsr equal the running thread's
 * Context, or that Context has no FP state and fcsr is 0. The trap exit
 * keeps it too (trap_entry.S).
 *
 * A thread that never writes FP state costs six instructions here (the
 * FS, fp_saved and fcsr tests) instead of 28 loads and stores. */
#define CTX_FCSR 208
#define CTX_FP_SAVED 216
#define FS_DIRTY_TO_CLEAN (1 << 13) /* sstatus.FS: Dirty is 0b11, Clean 0b10 */

    .section .text
    .balign 4
    .global arch_switch_context
arch_switch_context:
    sd      ra, 0(a0)
    sd      sp, 8(a0)
    sd      s0, 16(a0)
    sd      s1, 24(a0)
    sd      s2, 32(a0)
    sd      s3, 40(a0)
    sd      s4, 48(a0)
    sd      s5, 56(a0)
    sd      s6, 64(a0)
    sd      s7, 72(a0)
    sd      s8, 80(a0)
    sd      s9, 88(a0)
    sd      s10, 96(a0)
    sd      s11, 104(a0)
    /* sstatus.SD, the sign bit, is set iff FS (or XS/VS, which the kernel
     * leaves Off) is Dirty. */
    csrr    t0, sstatus
    bltz    t0, .Lsave_fp
.Lload:
    ld      ra, 0(a1)
    ld      sp, 8(a1)
    ld      s0, 16(a1)
    ld      s1, 24(a1)
    ld      s2, 32(a1)
    ld      s3, 40(a1)
    ld      s4, 48(a1)
    ld      s5, 56(a1)
    ld      s6, 64(a1)
    ld      s7, 72(a1)
    ld      s8, 80(a1)
    ld      s9, 88(a1)
    ld      s10, 96(a1)
    ld      s11, 104(a1)
    ld      t0, CTX_FP_SAVED(a1)
    bnez    t0, .Lload_fp
    frcsr   t0
    bnez    t0, .Lreset_fcsr
    ret

.Lload_fp:
    fld     fs0, 112(a1)
    fld     fs1, 120(a1)
    fld     fs2, 128(a1)
    fld     fs3, 136(a1)
    fld     fs4, 144(a1)
    fld     fs5, 152(a1)
    fld     fs6, 160(a1)
    fld     fs7, 168(a1)
    fld     fs8, 176(a1)
    fld     fs9, 184(a1)
    fld     fs10, 192(a1)
    fld     fs11, 200(a1)
    ld      t0, CTX_FCSR(a1)
    fscsr   t0
.Lclean:
    li      t0, FS_DIRTY_TO_CLEAN
    csrc    sstatus, t0
    ret

.Lreset_fcsr:
    fscsr   zero
    j       .Lclean

.Lsave_fp:
    fsd     fs0, 112(a0)
    fsd     fs1, 120(a0)
    fsd     fs2, 128(a0)
    fsd     fs3, 136(a0)
    fsd     fs4, 144(a0)
    fsd     fs5, 152(a0)
    fsd     fs6, 160(a0)
    fsd     fs7, 168(a0)
    fsd     fs8, 176(a0)
    fsd     fs9, 184(a0)
    fsd     fs10, 192(a0)
    fsd     fs11, 200(a0)
    fscsr   t1, zero            /* out with ours, in with the default */
    sd      t1, CTX_FCSR(a0)
    li      t1, 1
    sd      t1, CTX_FP_SAVED(a0)
    li      t0, FS_DIRTY_TO_CLEAN
    csrc    sstatus, t0
    j       .Lload

/* First code of a new thread: s1 = entry, s2 = argument (init_context).
 * A zero frame pointer ends backtraces here. */
    .global arch_thread_start
arch_thread_start:
    mv      s0, zero
    mv      a0, s2              /* entry turns interrupts on once it may */
    jalr    s1
1:  j       1b                  /* entry never returns */
