; enqueue.asm - the enqueue fast path and the batch ticket reservation.
; C twins: mpscq_fast_enqueue_base, mpscq_fast_reserve_base (src/fastpath.c).
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
extern mpscq_enqueue_full
extern mpscq_enqueue_closed

; int mpscq_fast_enqueue_x86_64(struct mpscq *q, struct mpscq_hp_rec *r,
;                               void *msg, uint64_t admit);
; in:   rdi q, rsi r, rdx msg, rcx admit (the first ticket refused:
;       capacity.h; all ones when unbounded)
; uses: rax, rcx, r8, r9, r10, r11 (and what the C continuations use)
; out:  eax = ST_OK; or a tail call to
;       mpscq_enqueue_finish(q, r, msg, ticket, start) with the hazard still
;       naming start, when the ticket is not in the hinted segment, to
;       mpscq_enqueue_full(q, r, ticket, start) when it is refused, or to
;       mpscq_enqueue_closed(q) with the hazard released.
FUNC mpscq_fast_enqueue_x86_64
    mov     r11, rcx                    ; admit (rcx is the shift count below)
    mov     qword [rsi + REC_HP], HP_ALL ; hazard = ALL (a plain store)
    mov     eax, 1
    lock xadd [rdi + Q_TAIL], rax       ; t = ticket; a full barrier: the
                                        ; hazard is visible before the hint
                                        ; load below (design.md 4)
    bt      rax, TAIL_CLOSED_BIT
    jc      .closed
    mov     r9, [rdi + Q_HINT]          ; s = hint (acquire: plain load)
    mov     [rsi + REC_HP], r9          ; narrow hazard to s (release: plain store)
    cmp     rax, r11                    ; bounded: refused at or above admit
    jae     .full
    mov     ecx, [rdi + Q_SHIFT]
    mov     r10, rax
    shr     r10, cl                     ; segment id of t
    cmp     r10, [r9 + SEG_ID]
    jne     .slow
    mov     r10, [rdi + Q_MASK]
    and     r10, rax                    ; slot index
    mov     [r9 + SEG_VALS + r10*8], rdx ; the value
    mov     rcx, [rdi + Q_NSLOTS]
    lea     rcx, [r9 + SEG_VALS + rcx*8] ; state array
    mov     byte [rcx + r10], SLOT_READY ; release: after the value (TSO)
    mov     qword [rsi + REC_HP], 0     ; hazard cleared after our last read of s
    ; Wake check.  With membarrier the consumer supplies the StoreLoad
    ; fence between our state store and this load; without it, MFENCE.
    cmp     dword [rdi + Q_NEED_FENCE], 0
    jne     .fence
.parked:
    cmp     dword [rdi + Q_PARKED], 0
    jne     .wake
    xor     eax, eax                    ; ST_OK
    ret
.fence:
    mfence
    jmp     .parked
.wake:
    sub     rsp, 8                      ; 16-byte alignment at the call
    call    mpscq_wake_consumer wrt ..plt ; rdi is still q
    add     rsp, 8
    xor     eax, eax
    ret
.closed:
    mov     qword [rsi + REC_HP], 0
    jmp     mpscq_enqueue_closed wrt ..plt      ; (q)
.full:
    mov     rdx, rax                    ; ticket
    mov     rcx, r9                     ; start, still protected
    jmp     mpscq_enqueue_full wrt ..plt        ; (q, r, ticket, start)
.slow:
    mov     rcx, rax                    ; ticket
    mov     r8, r9                      ; start, still protected
    jmp     mpscq_enqueue_finish wrt ..plt      ; (q, r, msg, ticket, start)
ENDFUNC mpscq_fast_enqueue_x86_64

; uint64_t mpscq_fast_reserve_x86_64(struct mpscq *q, struct mpscq_hp_rec *r,
;                                    uint64_t n, struct mpscq_segment **start);
; Publishes the hazard and takes n tickets with one LOCK XADD, exactly as
; above.  Returns the first ticket (bit 63 set if closed: then the hazard
; is cleared and *start not written); *start is the hinted segment the
; hazard names.
; in:   rdi q, rsi r, rdx n, rcx start
; uses: rax, r9
FUNC mpscq_fast_reserve_x86_64
    mov     qword [rsi + REC_HP], HP_ALL ; hazard = ALL, as above
    mov     rax, rdx
    lock xadd [rdi + Q_TAIL], rax       ; the tickets; full barrier
    bt      rax, TAIL_CLOSED_BIT
    jc      .closed
    mov     r9, [rdi + Q_HINT]
    mov     [rsi + REC_HP], r9
    mov     [rcx], r9
    ret
.closed:
    mov     qword [rsi + REC_HP], 0     ; nothing read, nothing kept
    ret
ENDFUNC mpscq_fast_reserve_x86_64
