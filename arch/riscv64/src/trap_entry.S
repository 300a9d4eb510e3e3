/*
 * Trap vector (direct mode). Saves the full integer frame, the CSRs that
 * describe the trap, and the FP state the handlers could destroy: C++
 * handlers compiled for lp64d may touch FP registers, and the interrupted
 * code's values must survive. Layout: arch/trap.hpp TrapFrame.
 *
 * How much FP state, by sstatus.FS at entry:
 *   - Off: none (the FPU is off; nothing touches it).
 *   - Clean: fcsr only. FS becomes Clean only at a switch (switch.S), where
 *     the thread resumes by returning from a call, so its caller-saved FP
 *     registers (ft*, fa*) are dead; and FS Clean means it has written no
 *     FP register since, so none of them holds a live value now either (a
 *     trap exit that leaves FS Clean returns to code of which the same
 *     holds). fs0-fs11 are callee-saved: every handler preserves them, and
 *     a switch away at interrupt exit brings them back (they match the
 *     Context while FS is Clean). fcsr is not preserved by calls: a
 *     handler's arithmetic sets flags, so it is saved.
 *   - Initial or Dirty: f0-f31 and fcsr.
 *
 * The frame goes on the current stack, unless that stack has no room left
 * for it and the handlers (sp below this hart's stack limit + a frame +
 * 1 KiB): then pushing
 * would fault again on the guard page, forever. Instead the trap continues
 * on the hart's emergency stack and is reported as a stack overflow (it is
 * fatal). Kernel-only for now: no user mode, so sscratch is only a scratch
 * register for that check and for holding back a masked interrupt.
 */
#define FRAME_SIZE 560
#define SEPC 256
#define SSTATUS 264
#define SCAUSE 272
#define STVAL 280
#define FCSR 544
#define FS_AT_ENTRY 552
#define FS_CLEAN 2 /* sstatus.FS, shifted down */
#define SSTATUS_FS_DIRTY (3 << 13)
/* arch/hart.hpp struct Hart (offsets checked by static_assert there) */
#define HART_IRQ_MASKED 17
#define HART_SIE_OFF 18
#define HART_INTERRUPTS_HELD 32
#define HART_STACK_LIMIT 40
#define HART_EMERGENCY_TOP 48
#define SSTATUS_SPIE (1 << 5)

.macro SAVE_GPRS  /* x1, x3..x31 into the frame at sp (x2 is stored apart) */
    sd      x1, 8(sp)
    sd      x3, 24(sp)
    sd      x4, 32(sp)
    sd      x5, 40(sp)
    sd      x6, 48(sp)
    sd      x7, 56(sp)
    sd      x8, 64(sp)
    sd      x9, 72(sp)
    sd      x10, 80(sp)
    sd      x11, 88(sp)
    sd      x12, 96(sp)
    sd      x13, 104(sp)
    sd      x14, 112(sp)
    sd      x15, 120(sp)
    sd      x16, 128(sp)
    sd      x17, 136(sp)
    sd      x18, 144(sp)
    sd      x19, 152(sp)
    sd      x20, 160(sp)
    sd      x21, 168(sp)
    sd      x22, 176(sp)
    sd      x23, 184(sp)
    sd      x24, 192(sp)
    sd      x25, 200(sp)
    sd      x26, 208(sp)
    sd      x27, 216(sp)
    sd      x28, 224(sp)
    sd      x29, 232(sp)
    sd      x30, 240(sp)
    sd      x31, 248(sp)
.endm

    .section .text.trap, "ax"
    .balign 4
    .global trap_vector
trap_vector:
    csrw    sscratch, t0
    /* An interrupt while this hart is masked (lazy masking, arch/cpu.hpp):
     * hold it back. The interrupted code resumes with SIE clear (SPIE
     * cleared here) and the interrupt pending at its source; unmasking
     * sets SIE (sie_off says it must) and it is taken then. Nothing here
     * touches the stack: the masked code may be a context switch with sp
     * and the hart's stack limit out of step. */
    csrr    t0, scause
    bgez    t0, .Lframe         /* an exception */
    lbu     t0, HART_IRQ_MASKED(tp)
    bnez    t0, .Lhold
.Lframe:
    ld      t0, HART_STACK_LIMIT(tp)
    addi    t0, t0, FRAME_SIZE + 1024  /* the frame + room for the handlers */
    bltu    sp, t0, .Lstack_overflow
    csrr    t0, sscratch
    addi    sp, sp, -FRAME_SIZE
    SAVE_GPRS
    addi    t0, sp, FRAME_SIZE
    sd      t0, 16(sp)
    csrr    t0, sepc
    sd      t0, SEPC(sp)
    csrr    t1, sstatus
    sd      t1, SSTATUS(sp)
    csrr    t0, scause
    sd      t0, SCAUSE(sp)
    csrr    t0, stval
    sd      t0, STVAL(sp)

    srli    t2, t1, 13
    andi    t2, t2, 3
    sd      t2, FS_AT_ENTRY(sp)
    beqz    t2, 1f              /* Off */
    frcsr   t0
    sd      t0, FCSR(sp)
    li      t0, FS_CLEAN
    beq     t2, t0, 1f          /* Clean: fcsr is all (see above) */
    fsd     f0, 288(sp)
    fsd     f1, 296(sp)
    fsd     f2, 304(sp)
    fsd     f3, 312(sp)
    fsd     f4, 320(sp)
    fsd     f5, 328(sp)
    fsd     f6, 336(sp)
    fsd     f7, 344(sp)
    fsd     f8, 352(sp)
    fsd     f9, 360(sp)
    fsd     f10, 368(sp)
    fsd     f11, 376(sp)
    fsd     f12, 384(sp)
    fsd     f13, 392(sp)
    fsd     f14, 400(sp)
    fsd     f15, 408(sp)
    fsd     f16, 416(sp)
    fsd     f17, 424(sp)
    fsd     f18, 432(sp)
    fsd     f19, 440(sp)
    fsd     f20, 448(sp)
    fsd     f21, 456(sp)
    fsd     f22, 464(sp)
    fsd     f23, 472(sp)
    fsd     f24, 480(sp)
    fsd     f25, 488(sp)
    fsd     f26, 496(sp)
    fsd     f27, 504(sp)
    fsd     f28, 512(sp)
    fsd     f29, 520(sp)
    fsd     f30, 528(sp)
    fsd     f31, 536(sp)
1:
    /* A frame record (ra = sepc, fp = interrupted s0) so backtraces from
     * inside the handler continue into the interrupted code. */
    addi    sp, sp, -16
    ld      t0, 16+SEPC(sp)
    sd      t0, 8(sp)
    sd      s0, 0(sp)
    addi    s0, sp, 16
    addi    a0, sp, 16
    call    tessera_trap
    addi    sp, sp, 16

    /* The FS to leave: the entry value, unless the trap may have put the
     * thread's Context out of step with the FP state it returns with; then
     * Dirty, so that its next switch saves that state. That can only
     * happen if the thread was switched out and back in during the trap
     * (preempted at interrupt exit) and the switch-out found FS Dirty: it
     * saved the handler chain's fs0-fs11 and fcsr, which need not be what
     * the thread returns to. Once the thread is back, FS is Clean and the
     * registers hold its Context; if FS is still Clean here, the chain
     * wrote no FP register on its way back, so it had none of fs0-fs11
     * changed at the switch (it would have to restore it: a write) and
     * only fcsr can differ, which is compared. Without a switch, FS Clean
     * here means nothing was written since entry. t4 != 0: leave Dirty.
     * switch.S states the invariant this keeps. */
    ld      t2, FS_AT_ENTRY(sp)
    li      t4, 0
    beqz    t2, 2f
    csrr    t3, sstatus         /* before the loads below make FS Dirty */
    frcsr   t4
    ld      t0, FCSR(sp)
    xor     t4, t4, t0          /* fcsr changed during the trap */
    srli    t3, t3, 63          /* sstatus.SD: FS is Dirty */
    or      t4, t4, t3
    fscsr   t0
    li      t0, FS_CLEAN
    beq     t2, t0, 2f          /* Clean at entry: only fcsr was saved */
    fld     f0, 288(sp)
    fld     f1, 296(sp)
    fld     f2, 304(sp)
    fld     f3, 312(sp)
    fld     f4, 320(sp)
    fld     f5, 328(sp)
    fld     f6, 336(sp)
    fld     f7, 344(sp)
    fld     f8, 352(sp)
    fld     f9, 360(sp)
    fld     f10, 368(sp)
    fld     f11, 376(sp)
    fld     f12, 384(sp)
    fld     f13, 392(sp)
    fld     f14, 400(sp)
    fld     f15, 408(sp)
    fld     f16, 416(sp)
    fld     f17, 424(sp)
    fld     f18, 432(sp)
    fld     f19, 440(sp)
    fld     f20, 448(sp)
    fld     f21, 456(sp)
    fld     f22, 464(sp)
    fld     f23, 472(sp)
    fld     f24, 480(sp)
    fld     f25, 488(sp)
    fld     f26, 496(sp)
    fld     f27, 504(sp)
    fld     f28, 512(sp)
    fld     f29, 520(sp)
    fld     f30, 528(sp)
    fld     f31, 536(sp)
2:
    ld      t0, SEPC(sp)
    csrw    sepc, t0
    ld      t0, SSTATUS(sp)
    beqz    t4, 3f
    li      t1, SSTATUS_FS_DIRTY
    or      t0, t0, t1
3:  csrw    sstatus, t0
    ld      x1, 8(sp)
    ld      x3, 24(sp)
    /* x4 (tp) is not restored: it names the hart, and a thread preempted
     * on one hart may resume on another (the scheduler migrates it). */
    ld      x5, 40(sp)
    ld      x6, 48(sp)
    ld      x7, 56(sp)
    ld      x8, 64(sp)
    ld      x9, 72(sp)
    ld      x10, 80(sp)
    ld      x11, 88(sp)
    ld      x12, 96(sp)
    ld      x13, 104(sp)
    ld      x14, 112(sp)
    ld      x15, 120(sp)
    ld      x16, 128(sp)
    ld      x17, 136(sp)
    ld      x18, 144(sp)
    ld      x19, 152(sp)
    ld      x20, 160(sp)
    ld      x21, 168(sp)
    ld      x22, 176(sp)
    ld      x23, 184(sp)
    ld      x24, 192(sp)
    ld      x25, 200(sp)
    ld      x26, 208(sp)
    ld      x27, 216(sp)
    ld      x28, 224(sp)
    ld      x29, 232(sp)
    ld      x30, 240(sp)
    ld      x31, 248(sp)
    ld      sp, 16(sp)
    sret

.Lhold:
    li      t0, SSTATUS_SPIE
    csrc    sstatus, t0
    li      t0, 1
    sb      t0, HART_SIE_OFF(tp)
    ld      t0, HART_INTERRUPTS_HELD(tp)
    addi    t0, t0, 1
    sd      t0, HART_INTERRUPTS_HELD(tp)
    csrr    t0, sscratch
    sret

/* The current stack is exhausted: build the frame on the emergency stack,
 * with the interrupted sp in it, and report. Never returns. */
.Lstack_overflow:
    ld      t0, HART_EMERGENCY_TOP(tp)
    sd      sp, -8(t0)
    addi    sp, t0, -16
    csrr    t0, sscratch
    addi    sp, sp, -FRAME_SIZE
    SAVE_GPRS
    ld      t0, FRAME_SIZE+8(sp)
    sd      t0, 16(sp)
    csrr    t0, sepc
    sd      t0, SEPC(sp)
    csrr    t0, sstatus
    sd      t0, SSTATUS(sp)
    csrr    t0, scause
    sd      t0, SCAUSE(sp)
    csrr    t0, stval
    sd      t0, STVAL(sp)
    sd      zero, FS_AT_ENTRY(sp)
    mv      s0, zero
    mv      a0, sp
    call    tessera_stack_overflow
1:  j       1b
