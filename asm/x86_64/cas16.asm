; cas16.asm - 16-byte compare-and-swap.  C twin: mpscq_arch_cas16_base.

%include "mpscq.inc"

; int mpscq_arch_cas16_x86_64(void *p, uint64_t expected[2],
;                             const uint64_t desired[2]);
; p must be 16-byte aligned.  LOCK CMPXCHG16B is a full barrier (seq_cst)
; whether it succeeds or fails.  On failure the current value is stored
; into expected.  Returns 1 on success, 0 on failure.
; in:   rdi p, rsi expected, rdx desired
; uses: rax, rcx, rdx, r8; rbx saved and restored (callee-saved)
FUNC mpscq_arch_cas16_x86_64
    push    rbx
    mov     r8, rdx
    mov     rax, [rsi]
    mov     rdx, [rsi + 8]
    mov     rbx, [r8]
    mov     rcx, [r8 + 8]
    lock cmpxchg16b [rdi]
    mov     [rsi], rax                  ; unchanged on success, current on failure
    mov     [rsi + 8], rdx
    sete    al
    movzx   eax, al
    pop     rbx
    ret
ENDFUNC mpscq_arch_cas16_x86_64
