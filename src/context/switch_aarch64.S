/* weft context switch, AArch64 (AAPCS64).
 *
 * void weft_context_swap(void** save_sp, void* load_sp)
 *
 * Saved frame (176 bytes), from the saved stack pointer upwards:
 *   +0   x19 x20   +16 x21 x22   +32 x23 x24   +48 x25 x26   +64 x27 x28
 *   +80  x29 (fp) x30 (lr)
 *   +96  d8 d9     +112 d10 d11  +128 d12 d13  +144 d14 d15
 *   +160 fpcr      +168 (pad)
 * x19-x28, fp, lr, the low halves of v8-v15 and FPCR (rounding mode) are
 * callee-saved under AAPCS64.
 *
 * A fresh context carries the entry function in x19, its argument in x20 and
 * weft_context_trampoline in x30. Built for arm64 but not yet run on one.
 */
        .text
        .globl  weft_context_swap
        .hidden weft_context_swap  // internal: not exported from libweft.so
        .type   weft_context_swap, %function
        .p2align 4
weft_context_swap:
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]

        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1

        ldr     x9, [sp, #160]
        msr     fpcr, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
        ret
        .cfi_endproc
        .size   weft_context_swap, .-weft_context_swap

        .globl  weft_context_trampoline
        .hidden weft_context_trampoline  // internal: not exported from libweft.so
        .type   weft_context_trampoline, %function
        .p2align 4
weft_context_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x20
        mov     x29, #0
        blr     x19
        brk     #0
        .cfi_endproc
        .size   weft_context_trampoline, .-weft_context_trampoline

        .section .note.GNU-stack,"",%progbits
