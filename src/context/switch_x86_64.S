/* weft context switch, x86-64 System V.
 *
 * void weft_context_swap(void** save_sp, void* load_sp)
 *   Saves the callee-saved state of the caller on its own stack, stores the
 *   resulting stack pointer into *save_sp, then loads load_sp and restores the
 *   state found there, returning into the context that saved it.
 *
 * Saved frame, from the saved stack pointer upwards:
 *   +0  MXCSR (4 bytes)  +4  x87 control word (2 bytes, padded)
 *   +8  r12  +16 r13  +24 r14  +32 r15  +40 rbx  +48 rbp  +56 return address
 *
 * Everything else is caller-saved under SysV, so the compiler has already
 * spilled it around the call. MXCSR and the x87 control word are
 * callee-saved "control bits" per the ABI (rounding mode, exception masks), so
 * a fiber that changes them must not leak the change to the next fiber: both
 * are saved on every switch (stmxcsr and fnstcw are cheap) but loaded only
 * when the incoming values differ from the outgoing ones (issue 21: ldmxcsr
 * and fldcw were a measurable part of a yield). The result is the same
 * register state as loading them unconditionally. rax and rcx, caller-saved,
 * carry the outgoing values across the stack swap.
 *
 * A fresh context (weft_context_make in context.cpp) carries the entry
 * function in r12 and its argument in r13, with weft_context_trampoline as the
 * return address.
 */
        .text
        .globl  weft_context_swap
        .hidden weft_context_swap  // internal: not exported from libweft.so
        .type   weft_context_swap, @function
        .p2align 4
weft_context_swap:
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movl    (%rsp), %eax            /* the outgoing MXCSR and x87 CW, */
        movzwl  4(%rsp), %ecx           /* in caller-saved scratch registers */

        movq    %rsp, (%rdi)
        movq    %rsi, %rsp

        /* Load the incoming context's MXCSR and x87 CW only where they differ
         * from the outgoing one's: loading the value already in the register
         * changes nothing, and ldmxcsr and fldcw cost more than the compare
         * (they order the FP pipeline). Fibers nearly never change them, so
         * both branches are taken and predicted. */
        cmpl    (%rsp), %eax
        je      1f
        ldmxcsr (%rsp)
1:      cmpw    4(%rsp), %cx
        je      2f
        fldcw   4(%rsp)
2:      addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   weft_context_swap, .-weft_context_swap

/* First code a new context runs: the stack pointer is 16-byte aligned here
 * (context.cpp lays the frame out so), so the call below sees the ABI's
 * alignment. The entry function never returns; ud2 traps if it does. The
 * undefined return address ends unwinding and backtraces at this frame. */
        .globl  weft_context_trampoline
        .hidden weft_context_trampoline  // internal: not exported from libweft.so
        .type   weft_context_trampoline, @function
        .p2align 4
weft_context_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r13, %rdi
        xorl    %ebp, %ebp
        callq   *%r12
        ud2
        .cfi_endproc
        .size   weft_context_trampoline, .-weft_context_trampoline

        .section .note.GNU-stack,"",@progbits
