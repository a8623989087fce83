; dequeue.asm - the dequeue fast path.  C twin: mpscq_fast_dequeue_base.
; Only the single consumer runs it, so its own fields need no LOCK; the
; slot state load is an acquire under x86-TSO (a plain MOV).

%include "mpscq.inc"

extern mpscq_dequeue_slow
extern mpscq_dequeue_crossed

; int mpscq_fast_dequeue_x86_64(struct mpscq *q, void **msg);
; in:   rdi q, rsi msg (neither is modified before a tail call)
; uses: rax, rcx, rdx, r8, r9, r10
; out:  eax = ST_OK with *msg set; or a tail call to
;       mpscq_dequeue_crossed(q) after taking a segment's last slot, or to
;       mpscq_dequeue_slow(q, msg) having changed nothing.
FUNC mpscq_fast_dequeue_x86_64
    cmp     qword [rdi + Q_NPEND], 0    ; a skipped slot: the C slow path
    jne     .slow
    mov     r8, [rdi + Q_SCAN_SEG]
    mov     rax, [rdi + Q_SCAN]
    mov     ecx, [rdi + Q_SHIFT]
    mov     rdx, rax
    shr     rdx, cl
    cmp     rdx, [r8 + SEG_ID]          ; scan still inside scan_seg?
    jne     .slow
    mov     r9, [rdi + Q_MASK]
    and     r9, rax                     ; slot index
    mov     rcx, [rdi + Q_NSLOTS]
    lea     rcx, [r8 + SEG_VALS + rcx*8]
    movzx   edx, byte [rcx + r9]        ; state (acquire)
    test    dl, SLOT_READY
    jz      .slow
    mov     r10, [r8 + SEG_VALS + r9*8] ; value, read after the state
    mov     [rsi], r10
    mov     [rdi + Q_LAST], rax
    and     edx, SLOT_CONT
    mov     [rdi + Q_LAST_CONT], edx
    inc     rax
    mov     [rdi + Q_SCAN], rax
    mov     [rdi + Q_HEAD], rax
    ; dequeued++: only this thread writes it; the aligned 8-byte store is
    ; atomic for readers (mpscq_size, mpscq_stats load it relaxed).
    inc     qword [rdi + Q_DEQUEUED]
    cmp     qword [rdi + Q_CAPACITY], 0
    jne     .count
.counted:
    test    rax, [rdi + Q_MASK]         ; took the segment's last slot?
    jz      .crossed
    xor     eax, eax                    ; ST_OK
    ret
.count:
    ; One more dequeue, counted in the consumer-private debt and published
    ; to `released` once per release_batch (capacity.h): a plain ADD, since
    ; the consumer is its only writer, and a release store under TSO, so
    ; no locked instruction.  rcx is free here.
    mov     rcx, [rdi + Q_RELEASE_DEBT]
    inc     rcx
    cmp     rcx, [rdi + Q_RELEASE_BATCH]
    jae     .release
    mov     [rdi + Q_RELEASE_DEBT], rcx
    jmp     .counted
.release:
    add     [rdi + Q_RELEASED], rcx
    mov     qword [rdi + Q_RELEASE_DEBT], 0
    jmp     .counted
.crossed:
    jmp     mpscq_dequeue_crossed wrt ..plt     ; (q): recycle drained segments
.slow:
    jmp     mpscq_dequeue_slow wrt ..plt        ; (q, msg)
ENDFUNC mpscq_fast_dequeue_x86_64
