; checkasm.asm - call a routine the way dav1d's checkasm does: with known
; junk in every callee-saved register, and verify afterwards that the
; routine preserved them and the stack pointer.  Test code only.

%include "mpscq.inc"

extern mpscq_test_abi_failures

; long mpscq_test_checked_call(void *fn, long a0, long a1, long a2, long a3,
;                              long a4);
; Calls fn(a0, a1, a2, a3, a4) and returns its rax.  On any clobbered rbx,
; rbp, r12-r15 or a moved rsp, increments mpscq_test_abi_failures.
FUNC mpscq_test_checked_call
    push    rbp
    push    rbx
    push    r12
    push    r13
    push    r14
    push    r15
    sub     rsp, 8                      ; 16-byte aligned at the call below
    mov     [rsp], rsp                  ; remember rsp
    mov     rax, rdi
    mov     rdi, rsi
    mov     rsi, rdx
    mov     rdx, rcx
    mov     rcx, r8
    mov     r8, r9
    mov     rbx, 0x5a5a0101deadbeef
    mov     rbp, 0x5a5a0202cafef00d
    mov     r12, 0x5a5a03030badc0de
    mov     r13, 0x5a5a04041337d00d
    mov     r14, 0x5a5a0505feedface
    mov     r15, 0x5a5a06068badf00d
    call    rax
    xor     ecx, ecx
    cmp     rsp, [rsp]
    setne   cl
    mov     r8, 0x5a5a0101deadbeef
    cmp     rbx, r8
    setne   dl
    or      cl, dl
    mov     r8, 0x5a5a0202cafef00d
    cmp     rbp, r8
    setne   dl
    or      cl, dl
    mov     r8, 0x5a5a03030badc0de
    cmp     r12, r8
    setne   dl
    or      cl, dl
    mov     r8, 0x5a5a04041337d00d
    cmp     r13, r8
    setne   dl
    or      cl, dl
    mov     r8, 0x5a5a0505feedface
    cmp     r14, r8
    setne   dl
    or      cl, dl
    mov     r8, 0x5a5a06068badf00d
    cmp     r15, r8
    setne   dl
    or      cl, dl
    test    cl, cl
    jz      .ok
    lock inc dword [rel mpscq_test_abi_failures]
.ok:
    add     rsp, 8
    pop     r15
    pop     r14
    pop     r13
    pop     r12
    pop     rbx
    pop     rbp
    ret
ENDFUNC mpscq_test_checked_call
