; dequeue.asm - the dequeue entry and fast path.  C twins:
; mpscq_dequeue_entry_base (src/dequeue.c), mpscq_fast_dequeue_base
; (src/fastpath.c).
; Only the single consumer runs it, so its own fields need no LOCK; the
; slot state load is an acquire under x86-TSO (a plain MOV).

%include "mpscq.inc"

extern mpscq_dequeue_slow
extern mpscq_dequeue_crossed
extern mpscq_space_wake

; DEQ_BODY: the fast path, rdi q, rsi msg (neither modified before a tail
; call); uses rax, rcx, rdx, r8-r10.  Ends in a return or a tail call.
%macro DEQ_BODY 0
    cmp     qword [rdi + Q_GATE], 0     ; runs passed or a peek: the C slow path
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
    ; atomic for readers (mpscq_size, mpscq_stats load it relaxed), and a
    ; release store under TSO, which a waiting producer's acquire load in
    ; space_take pairs with (enqueue_wait.c).
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
    ; once per release_batch as released = dequeued (capacity.h: absolute,
    ; since a waiting producer may pull it up too), a plain MOV, which is
    ; a release store under TSO: no locked instruction.  rcx is free here.
    mov     rcx, [rdi + Q_RELEASE_DEBT]
    inc     rcx
    cmp     rcx, [rdi + Q_RELEASE_BATCH]
    jae     %%release
    mov     [rdi + Q_RELEASE_DEBT], rcx
%%check:
    ; mpscq_space_check: a producer waiting in mpscq_enqueue_wait is
    ; woken now.  A plain load after the store of dequeued; the waiter's
    ; membarrier orders the pair (design.md s. 6.3).
    cmp     dword [rdi + Q_SPACE_ARMED], 0
    jne     %%armed
    jmp     %%counted
%%release:
    mov     rcx, [rdi + Q_DEQUEUED]
    mov     [rdi + Q_RELEASED], rcx
    mov     qword [rdi + Q_RELEASE_DEBT], 0
    jmp     %%check
%%armed:
    ; mpscq_space_wake(q) may clobber every caller-saved register; rdi,
    ; rsi and r9 are still needed.  Three pushes on an entry rsp of 8 mod
    ; 16 align the call.
    push    rdi
    push    rsi
    push    r9
    call    mpscq_space_wake wrt ..plt
    pop     r9
    pop     rsi
    pop     rdi
    jmp     %%counted
%%crossed:
    jmp     mpscq_dequeue_crossed wrt ..plt     ; (q): recycle drained segments
%%slow:
    jmp     mpscq_dequeue_slow wrt ..plt        ; (q, msg)
%endmacro

; int mpscq_fast_dequeue_x86_64(struct mpscq *q, void **msg);
; in:   rdi q, rsi msg (neither is modified before a tail call)
; uses: rax, rcx, rdx, r8, r9, r10 (and every caller-saved register when
;       a bounded dequeue finds a producer waiting: a call of
;       mpscq_space_wake)
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
