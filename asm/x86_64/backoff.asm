; backoff.asm - spin-wait hints.  C twin: mpscq_arch_pause_loop_base.  The C caller (mpscq_arch_spin_ns) turns
; nanoseconds into an iteration count calibrated once per process, since
; PAUSE costs ~10 cycles on older cores and ~140 on Skylake and later.

%include "mpscq.inc"

; void mpscq_arch_pause_loop_x86_64(unsigned long n);  n PAUSEs, n may be 0.
; in: rdi n   uses: rdi
FUNC mpscq_arch_pause_loop_x86_64
    test    rdi, rdi
    jz      .done
.loop:
    pause
    dec     rdi
    jnz     .loop
.done:
    ret
ENDFUNC mpscq_arch_pause_loop_x86_64
