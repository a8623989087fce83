; enqueue.asm - the enqueue entry, its fast path and the batch ticket
; reservation.  C twins: mpscq_enqueue_entry_base (src/enqueue.c),
; mpscq_fast_enqueue_base, mpscq_fast_reserve_base (src/fastpath.c).
;
; Memory ordering under x86-TSO: loads are not reordered with older loads,
; stores not with older stores, and a load may pass an older store to a
; different address only.  So a plain MOV load is an acquire and a plain
; MOV store a release; the one StoreLoad edge we need (hazard publish
; before reading the hint) comes from the ticket's LOCK XADD, a full
; barrier, which stands between the two: one locked instruction in all.

%include "mpscq.inc"

extern mpscq_wake_consumer
extern mpscq_enqueue_finish
extern mpscq_enqueue_refused
extern mpscq_enqueue_slow
extern mpscq_tls_tpoff

; ENQ_BODY rec, msg, admit: the fast path from the hazard store on, with
; rdi = q and the record, message and admission bound in the registers
; named (any of rsi, rdx, rcx, r8); uses rax, r9, r10, r11.  Ends in a
; return or a tail call to a C continuation.  admit = `none`: the
; unbounded body, where a ticket is refused only when the queue is closed
; (bit 63), tested by its sign.
;
; Beyond the C twin: the wake check reads `parked` and `need_fence` (two
; adjacent ints) with one 8-byte compare, and the segment's `base` gives
; the slot with one subtraction that is also the in-segment test.
%macro ENQ_BODY 3
    mov     qword [%1 + REC_HP], HP_ALL ; hazard = ALL (a plain store)
    mov     eax, 1
    lock xadd [rdi + Q_TAIL], rax       ; t = ticket; a full barrier: the
                                        ; hazard is visible before the hint
                                        ; load below (design.md 4)
%ifidn %3, none
    test    rax, rax                    ; closed (bit 63)
    js      %%refused
%else
    cmp     rax, %3                     ; closed (bit 63) or refused
    jae     %%refused
%endif
    mov     r9, [rdi + Q_HINT]          ; s = hint (acquire: plain load)
    mov     [%1 + REC_HP], r9           ; narrow hazard to s (release: plain store)
    mov     r10, rax
    sub     r10, [r9 + SEG_BASE]        ; slot = t - s->base ...
    cmp     r10, [rdi + Q_NSLOTS]       ; ... if below N (unsigned: a hint
    jae     %%slow                      ; past t wraps around)
    ; Slot i's line l = i / 7, by a multiply (exact for i < 2^30); the
    ; value at 8 (i + l), the state at 57 l + i + 56 of the slot area
    ; (internal.h).  rax (the ticket) is not needed past here.
    imul    rax, r10, DIV7_MUL
    shr     rax, 32                     ; l
    lea     r11, [r10 + rax]            ; i + l
    mov     [r9 + SEG_VALS + r11*8], %2 ; the value
    imul    rax, rax, 57
    add     rax, r10                    ; 57 l + i
    mov     byte [r9 + SEG_VALS + LINE_STATES + rax], SLOT_READY ; release:
                                        ; after the value (TSO), same line
    mov     qword [%1 + REC_HP], 0      ; hazard cleared after our last read of s
    ; Wake check: `parked` (the futex word) and `need_fence` side by side,
    ; both 0 in the common case.  With membarrier the consumer supplies the
    ; StoreLoad fence between our state store and this load; without it
    ; (need_fence), MFENCE first.
    cmp     qword [rdi + Q_PARKED], 0
    jne     %%check
    xor     eax, eax                    ; ST_OK
    ret
%%check:
    cmp     dword [rdi + Q_NEED_FENCE], 0
    je      %%parked
    mfence
%%parked:
    cmp     dword [rdi + Q_PARKED], 0
    jne     %%wake
    xor     eax, eax
    ret
%%wake:
    sub     rsp, 8                      ; 16-byte alignment at the call
    call    mpscq_wake_consumer wrt ..plt ; rdi is still q
    add     rsp, 8
    xor     eax, eax
    ret
%%refused:                              ; (q, r, ticket, 1), hazard still ALL
    mov     r8, %1
    mov     rsi, r8
    mov     rdx, rax
    mov     ecx, 1
    jmp     mpscq_enqueue_refused wrt ..plt
%%slow:                                 ; (q, r, msg, ticket, start)
    mov     r11, %1
    mov     r10, %2
    mov     rsi, r11
    mov     rdx, r10
    mov     rcx, rax
    mov     r8, r9                      ; start, still protected
    jmp     mpscq_enqueue_finish wrt ..plt
%endmacro

; int mpscq_fast_enqueue_x86_64(struct mpscq *q, struct mpscq_hp_rec *r,
;                               void *msg, uint64_t admit);
; in:   rdi q, rsi r, rdx msg, rcx admit (the first ticket not admitted:
;       capacity.h; 1 << 63 when unbounded, so that a closed queue's
;       ticket, bit 63 set, fails the same compare)
; uses: rax, rcx, rdx, rsi, r8-r11 (and what the C continuations use)
; out:  eax = ST_OK; or a tail call to
;       mpscq_enqueue_finish(q, r, msg, ticket, start) with the hazard still
;       naming start, when the ticket is not in the hinted segment, or to
;       mpscq_enqueue_refused(q, r, ticket, 1) with the hazard still ALL,
;       when the queue is closed or the ticket refused.
FUNC mpscq_fast_enqueue_x86_64
    ENQ_BODY rsi, rdx, rcx
ENDFUNC mpscq_fast_enqueue_x86_64

; int mpscq_enqueue_entry_x86_64(struct mpscq *q, void *msg);
; The whole of mpscq_enqueue (the C twin: mpscq_enqueue_entry_base): the
; argument check, this thread's cached record for q (hazard.h: q and qid
; match, initial-exec TLS at %fs:mpscq_tls_tpoff), its spare, admission
; (bounded: released + rejected + capacity, and the record's last refusal
; says nothing against it), then the fast path inline, all in registers.
; The fast path is there twice, once per mode: the unbounded copy needs no
; admission bound (its C twin passes 1 << 63 and compares), which saves
; the bound's load, test and set.
; in:   rdi q, rsi msg
; uses: rax, rcx, rdx, r8-r11
; out:  as mpscq_fast_enqueue_x86_64, MPSCQ_INVAL for a NULL q, or a tail
;       call to mpscq_enqueue_slow(q, msg) for anything else.
ENTRY mpscq_enqueue_entry_x86_64, mpscq_enqueue
    test    rdi, rdi
    jz      .inval
    mov     rax, [rel mpscq_tls_tpoff]
    cmp     rdi, [fs:rax + TLS_Q]       ; this thread's last queue ...
    jne     .slow
    mov     rcx, [rdi + Q_QID]
    cmp     rcx, [fs:rax + TLS_QID]     ; ... and not one freed since
    jne     .slow
    mov     rdx, [fs:rax + TLS_REC]     ; r
    cmp     qword [rdx + REC_SPARE], 0  ; a spare in hand
    je      .slow
    cmp     qword [rdi + Q_CAPACITY], 0
    jne     .bounded
    ENQ_BODY rdx, rsi, none             ; unbounded
.bounded:
    mov     rcx, [rdi + Q_CAPACITY]
    add     rcx, [rdi + Q_RELEASED]     ; admit = capacity + released
    add     rcx, [rdi + Q_REJECTED]     ;         + rejected (acquire: plain)
    mov     rax, [rdx + REC_SEEN]
    inc     rax
    cmp     rax, rcx                    ; seen + 1 > admit: FULL, no ticket
    ja      .slow
    ENQ_BODY rdx, rsi, rcx
.slow:
    jmp     mpscq_enqueue_slow wrt ..plt        ; (q, msg)
.inval:
    mov     eax, ST_INVAL
    ret
ENDFUNC mpscq_enqueue_entry_x86_64

; uint64_t mpscq_fast_reserve_x86_64(struct mpscq *q, struct mpscq_hp_rec *r,
;                                    uint64_t n, uint64_t admit,
;                                    struct mpscq_segment **start);
; Publishes the hazard and takes n tickets with one LOCK XADD, exactly as
; above.  Returns the first ticket t; when t + n > admit (closed or
; refused) the hazard still says ALL and *start is not written, else the
; hint is read, the hazard narrowed to it and *start set.
; in:   rdi q, rsi r, rdx n, rcx admit, r8 start
; uses: rax, r9, r10
FUNC mpscq_fast_reserve_x86_64
    mov     qword [rsi + REC_HP], HP_ALL ; hazard = ALL, as above
    mov     rax, rdx
    lock xadd [rdi + Q_TAIL], rax       ; the tickets; full barrier
    lea     r10, [rax + rdx]
    cmp     r10, rcx                    ; t + n > admit: closed or refused
    ja      .out
    mov     r9, [rdi + Q_HINT]
    mov     [rsi + REC_HP], r9
    mov     [r8], r9
.out:
    ret
ENDFUNC mpscq_fast_reserve_x86_64
