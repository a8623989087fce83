; dequeue.asm - the dequeue entry and fast path.  C twins:
; mpscq_dequeue_entry_base (src/dequeue.c), mpscq_fast_dequeue_base
; (src/fastpath.c).
; Only the single consumer runs it, so its own fields need no LOCK; the
; slot state load is an acquire under x86-TSO (a plain MOV).

%include "mpscq.inc"

extern mpscq_dequeue_slow
extern mpscq_dequeue_crossed

; DEQ_BODY: the fast path, rdi q, rsi msg (neither modified before a tail
; call); uses rax, rcx, rdx, r8-r10.  Ends in a return or a tail call.
%macro DEQ_BODY 0
    cmp     qword [rdi + Q_NPEND], 0    ; a skipped slot: the C slow path
    jne     %%slow
    mov     r8, [rdi + Q_SCAN_SEG]
    mov     rax, [rdi + Q_SCAN]
    mov     r9, rax
    sub     r9, [r8 + SEG_BASE]         ; slot = scan - base, if below N
    cmp     r9, [rdi + Q_NSLOTS]
    jae     %%slow
    mov     rcx, [rdi + Q_STATE_OFF]
    add     rcx, r8
    movzx   edx, byte [rcx + r9]        ; state (acquire)
    test    dl, SLOT_READY
    jz      %%slow
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
    jne     %%count
%%counted:
    inc     r9
    cmp     r9, [rdi + Q_NSLOTS]        ; took the segment's last slot?
    je      %%crossed
    xor     eax, eax                    ; ST_OK
    ret
%%count:
    ; One more dequeue, counted in the consumer-private debt and published
    ; to `released` once per release_batch (capacity.h): a plain ADD, since
    ; the consumer is its only writer, and a release store under TSO, so
    ; no locked instruction.  rcx is free here.
    mov     rcx, [rdi + Q_RELEASE_DEBT]
    inc     rcx
    cmp     rcx, [rdi + Q_RELEASE_BATCH]
    jae     %%release
    mov     [rdi + Q_RELEASE_DEBT], rcx
    jmp     %%counted
%%release:
    add     [rdi + Q_RELEASED], rcx
    mov     qword [rdi + Q_RELEASE_DEBT], 0
    jmp     %%counted
%%crossed:
    jmp     mpscq_dequeue_crossed wrt ..plt     ; (q): recycle drained segments
%%slow:
    jmp     mpscq_dequeue_slow wrt ..plt        ; (q, msg)
%endmacro

; int mpscq_fast_dequeue_x86_64(struct mpscq *q, void **msg);
; in:   rdi q, rsi msg (neither is modified before a tail call)
; uses: rax, rcx, rdx, r8, r9, r10
; out:  eax = ST_OK with *msg set; or a tail call to
;       mpscq_dequeue_crossed(q) after taking a segment's last slot, or to
;       mpscq_dequeue_slow(q, msg) having changed nothing.
;
; Beyond its C twin: the dequeue count is one INC of memory (the C
; compiler loads, adds and stores an atomic it may not fuse), scan and
; head are stored from one register, and the segment's `base` gives the
; slot with one subtraction that is also the in-segment test.
FUNC mpscq_fast_dequeue_x86_64
    DEQ_BODY
ENDFUNC mpscq_fast_dequeue_x86_64

; int mpscq_dequeue_entry_x86_64(struct mpscq *q, void **msg);
; The whole of mpscq_dequeue (the C twin: mpscq_dequeue_entry_base): the
; argument checks, then the fast path inline.
FUNC mpscq_dequeue_entry_x86_64
    test    rdi, rdi
    jz      .inval
    test    rsi, rsi
    jz      .inval
    DEQ_BODY
.inval:
    mov     eax, ST_INVAL
    ret
ENDFUNC mpscq_dequeue_entry_x86_64
