; dequeue.asm - the dequeue entry and fast path.  C twins:
; mpscq_dequeue_entry_base (src/dequeue.c), mpscq_fast_dequeue_base
; (src/fastpath.c).
; Only the single consumer runs it, so its own fields need no LOCK; the
; slot state load is an acquire under x86-TSO (a plain MOV).

%include "mpscq.inc"

extern mpscq_dequeue_slow
extern mpscq_dequeue_crossed
extern mpscq_dequeue_slow_out
extern mpscq_dequeue_crossed_out
extern mpscq_dequeue_enter
extern mpscq_space_wake
extern mpscq_tls_tpoff

; DEQ_BODY out: the fast path, rdi q, rsi msg (neither modified before a
; tail call); uses rax, rcx, rdx, r8-r10.  Ends in a return or a tail
; call.  out = 1: the mpscq_dequeue entry's, with r11 the caller's
; consumer mark (src/consumer.h), which every way out leaves: a plain
; store of NULL before the return (a release store under TSO), or the
; continuations' _out twins.
%macro DEQ_BODY 1
    cmp     qword [rdi + Q_GATE], 0     ; runs passed or a peek: the C slow path
    jne     %%slow
    mov     r8, [rdi + Q_SCAN_SEG]
    mov     rax, [rdi + Q_SCAN]
    mov     r9, rax
    sub     r9, [r8 + SEG_BASE]         ; slot = scan - base, if below N
    cmp     r9, [rdi + Q_NSLOTS]
    jae     %%slow
    imul    rcx, r9, DIV7_MUL           ; line l = slot / 7 (internal.h)
    shr     rcx, 32
    lea     r10, [r9 + rcx]             ; the value at 8 (slot + l)
    imul    rcx, rcx, 57                ; the state at 57 l + slot + 56
    add     rcx, r9
    movzx   edx, byte [r8 + SEG_VALS + LINE_STATES + rcx] ; state (acquire)
    test    dl, SLOT_READY
    jz      %%slow
    mov     r10, [r8 + SEG_VALS + r10*8] ; value, read after the state
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
    je      %%counted
    ; Bounded (inline, so that it falls through with no jump back): one
    ; more dequeue, counted in the consumer-private debt and published
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
%%counted:
    inc     r9
    cmp     r9, [rdi + Q_NSLOTS]        ; took the segment's last slot?
    je      %%crossed
%if %1
    mov     qword [r11 + MARK_IN], 0    ; out of the consumer call
%endif
    xor     eax, eax                    ; ST_OK
    ret
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
%if %1
    mov     r11, [rel mpscq_tls_tpoff]  ; the mark again (r11 was clobbered)
    mov     r11, [fs:r11 + TLS_MARK]
%endif
    jmp     %%counted
%%crossed:
%if %1
    jmp     mpscq_dequeue_crossed_out wrt ..plt ; (q): recycle, leave the call
%%slow:
    jmp     mpscq_dequeue_slow_out wrt ..plt    ; (q, msg), then leave the call
%else
    jmp     mpscq_dequeue_crossed wrt ..plt     ; (q): recycle drained segments
%%slow:
    jmp     mpscq_dequeue_slow wrt ..plt        ; (q, msg)
%endif
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
    DEQ_BODY 0
ENDFUNC mpscq_fast_dequeue_x86_64

; int mpscq_dequeue_entry_x86_64(struct mpscq *q, void **msg);
; The whole of mpscq_dequeue (the C twin: mpscq_dequeue_entry_base): the
; argument checks, the consumer check (src/consumer.h: this thread's mark
; says q, a plain store, then the queue must name this mark, a plain
; load; the taker's membarrier orders the pair), then the fast path
; inline.  Anything else (a first call, another consumer thread, a queue
; without membarrier) continues in mpscq_dequeue_enter(q, msg).
ENTRY mpscq_dequeue_entry_x86_64, mpscq_dequeue
    test    rdi, rdi
    jz      .inval
    test    rsi, rsi
    jz      .inval
    mov     r11, [rel mpscq_tls_tpoff]
    mov     r11, [fs:r11 + TLS_MARK]    ; this thread's mark
    mov     [r11 + MARK_IN], rdi        ; inside q
    cmp     r11, [rdi + Q_CONSUMER]     ; and q's consumer?
    jne     .enter
    DEQ_BODY 1
.enter:
    jmp     mpscq_dequeue_enter wrt ..plt       ; (q, msg)
.inval:
    mov     eax, ST_INVAL
    ret
ENDFUNC mpscq_dequeue_entry_x86_64
