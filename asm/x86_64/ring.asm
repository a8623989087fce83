; ring.asm - mpscq_ring's producer fast paths: the claim (reserve), the
; publish (commit) and the whole write.  C twins: mpscq_ring_claim_base,
; mpscq_ring_publish_base, mpscq_ring_write_base (src/ring_fastpath.c);
; the continuations are C (src/ring_write.c); doc/ring-design.md s. 3
; gives the argument.
;
; Memory ordering under x86-TSO, as in enqueue.asm: a plain MOV load is an
; acquire (tail, the map words, `sleeping`), a plain MOV store a release
; (the slot's claim word, the record's header); the claim's LOCK XADD and
; the commit's XCHG are full barriers, the second being the StoreLoad
; fence of the Dekker pair with a consumer that goes to sleep.
;
; Beyond the C twin: the write keeps the record's position, payload,
; state byte and slot in registers from the claim to the commit (the C
; compiler reloads the handle's fields after each atomic), spills only
; the length and the data pointer (to the red zone: up to 256 bytes the
; fast path calls nothing; above that it pushes what it keeps and calls
; memcpy after its last use of the red zone), copies a payload of up to
; 256 bytes inline (32-byte blocks, the last one overlapping; 16-, 8-, 4-
; and 1-byte moves below 32), and tests the map word's top 48 bits with
; one compare.

%include "mpscq.inc"

extern mpscq_ring_claim_slow
extern mpscq_ring_claim_after
extern mpscq_ring_write_slow
extern mpscq_ring_write_after
extern mpscq_ring_wake_ok
extern memcpy

; CHUNK x: rdx = x / S for x < 2^63, with rdi = r (ring.h, ring_chunk: the
; high half of x * floor((2^64 - 1) / S) is x / S or one less, and one
; step corrects it).  x is not rax, rdx or r11; uses rax, r11.
%macro CHUNK 1
    mov     rax, %1
    mul     qword [rdi + R_SINV]        ; rdx = q
    lea     rax, [rdx + 1]
    mov     r11, rax
    imul    r11, [rdi + R_S]            ; (q + 1) * S
    cmp     r11, %1
    cmovbe  rdx, rax                    ; <= x: q + 1
%endmacro

; MAPW: rax = the map word of chunk rdx (acquire: a plain load), r11 = the
; word's top 48 bits when chunk rdx is installed there:
; RING_MAPW(c, INSTALLED, phys) >> 16 = (c & CMASK) << 4 | INSTALLED.
%macro MAPW 0
    mov     r11, [rdi + R_MMASK]
    and     r11, rdx
    mov     rax, [rdi + R_MAP]
    mov     rax, [rax + r11*8]
    mov     r11, rdx
    shl     r11, 20
    shr     r11, 16                     ; (c & CMASK) << 4: CMASK is 44 bits
    or      r11, RING_MAP_INSTALLED
%endmacro

; CLAIM slow, after: the claim's common case (claim_fast in the C twin).
; in:   rdi r, rsi g, the length at [rsp - 8]
; uses: rax, rcx, rdx, r8-r11
; out:  r8 pos, r9 the payload, rcx the record's state byte, r10 the
;       thread's slot; or a jump to `slow` (tail closed or the pre-check
;       failed; nothing done) or to `after` with r8 = pos (closed, or pos
;       not in an installed chunk).
%macro CLAIM 2
    mov     r9, [rdi + R_SH]
    mov     r8, [r9 + SH_TAIL]          ; t
    test    r8, r8
    js      %1                          ; closed (bit 63)
    CHUNK   r8                          ; rdx = c0
    MAPW
    shr     rax, 16
    cmp     rax, r11
    jne     %1                          ; c0 not installed: the C path
    mov     r10d, [rsi + RREG_SLOT]
    shl     r10, 6
    add     r10, [rdi + R_SLOTS]        ; the slot (64 bytes each)
    bts     rdx, 63
    mov     [r10 + RSLOT_CLAIM], rdx    ; PENDING | c0, before the claim
    mov     rax, [rsp - 8]
    add     rax, RING_HDR_BYTES + 15
    and     rax, -16                    ; the record, in units of 16
    lock xadd [r9 + SH_TAIL], rax       ; pos: the claim, a full barrier
    mov     r8, rax
    test    rax, rax
    js      %2                          ; closed meanwhile
    CHUNK   r8                          ; rdx = c
    mov     rcx, rdx
    imul    rcx, [rdi + R_S]
    neg     rcx
    add     rcx, r8                     ; off = pos - c * S
    MAPW
    movzx   r9d, ax                     ; phys
    shr     rax, 16
    cmp     rax, r11
    jne     %2                          ; c not installed
    cmp     r9, [rdi + R_K]
    jae     %2                          ; a physical number out of range
    mov     [r10 + RSLOT_CLAIM], r8     ; the claim's position (relaxed)
    imul    r9, [rdi + R_STRIDE]
    add     r9, [rdi + R_CHUNKS]        ; the chunk: state bytes, then data
    mov     rax, rcx
    shr     rax, 4
    add     rax, r9                     ; the record's state byte
    add     r9, [rdi + R_STATE_BYTES]
    add     r9, rcx                     ; the record
    mov     rcx, rax
    mov     [r9], r8                    ; header: pos
    mov     eax, [rsp - 8]              ; len (max_message < 2^32)
    mov     edx, eax
    xor     edx, RING_REC_CHECK
    shl     rdx, 32
    or      rax, rdx
    mov     [r9 + 8], rax               ; header: len, len ^ RING_REC_CHECK
    add     r9, RING_HDR_BYTES          ; the payload
%endmacro

; PUBLISH st, slot: the commit of the record whose state byte is at st,
; claimed through the slot at `slot`; returns.  uses: rax, rdx.
%macro PUBLISH 2
    mov     dl, RING_ST_HEAD
    xchg    [%1], dl                    ; HEAD: release for the consumer,
                                        ; StoreLoad before `sleeping`
    mov     qword [%2 + RSLOT_CLAIM], -1 ; IDLE (release: a plain store)
    mov     rax, [rdi + R_SH]
    cmp     dword [rax + SH_SLEEPING], 0 ; seq_cst load after the XCHG
    jne     %%wake
    xor     eax, eax                    ; ST_OK
    ret
%%wake:
    jmp     mpscq_ring_wake_ok wrt ..plt ; (r)
%endmacro

; int mpscq_ring_claim_x86_64(struct mpscq_ring *r, struct ring_reg *g,
;                             size_t len);
; in:   rdi r, rsi g (no claim open), rdx len (1 .. max_message)
; out:  eax = ST_OK with g->open_buf and g->open_state naming the
;       claim; or a tail call to mpscq_ring_claim_slow(r, g, len) or
;       mpscq_ring_claim_after(r, g, len, pos).
FUNC mpscq_ring_claim_x86_64
    mov     [rsp - 8], rdx              ; len, in the red zone
    CLAIM   .slow, .after
    mov     [rsi + RREG_OPEN_BUF], r9
    mov     [rsi + RREG_OPEN_STATE], rcx
    xor     eax, eax
    ret
.slow:
    mov     rdx, [rsp - 8]
    jmp     mpscq_ring_claim_slow wrt ..plt
.after:
    mov     rdx, [rsp - 8]
    mov     rcx, r8
    jmp     mpscq_ring_claim_after wrt ..plt
ENDFUNC mpscq_ring_claim_x86_64

; int mpscq_ring_publish_x86_64(struct mpscq_ring *r, struct ring_reg *g);
; in:   rdi r, rsi g (its claim open)
; out:  eax = ST_OK, or a tail call to mpscq_ring_wake_ok(r).
FUNC mpscq_ring_publish_x86_64
    mov     qword [rsi + RREG_OPEN_BUF], 0
    mov     rcx, [rsi + RREG_OPEN_STATE]
    mov     r8d, [rsi + RREG_SLOT]
    shl     r8, 6
    add     r8, [rdi + R_SLOTS]
    PUBLISH rcx, r8
ENDFUNC mpscq_ring_publish_x86_64

; int mpscq_ring_write_x86_64(struct mpscq_ring *r, struct ring_reg *g,
;                             const void *data, size_t len);
; in:   rdi r, rsi g (no claim open), rdx data, rcx len (1 .. max_message)
; out:  eax = ST_OK; or a tail call to mpscq_ring_write_slow(r, g, data,
;       len), mpscq_ring_write_after(r, g, data, len, pos) or
;       mpscq_ring_wake_ok(r).
FUNC mpscq_ring_write_x86_64
    mov     [rsp - 8], rcx              ; len, in the red zone
    mov     [rsp - 16], rdx             ; data
    CLAIM   .slow, .after
    ; Copy len bytes from data to the payload r9.  Live: rdi, rsi, rcx
    ; (state byte), r10 (slot).
    mov     rdx, [rsp - 16]
    mov     r8, [rsp - 8]
    cmp     r8, 16
    jb      .small
    cmp     r8, 256
    ja      .long
    cmp     r8, 32
    jb      .lt32
    lea     r11, [r8 - 32]              ; the last 32 bytes' offset
    xor     eax, eax
.block:                                 ; 32 bytes a pass
    movdqu  xmm0, [rdx + rax]
    movdqu  xmm1, [rdx + rax + 16]
    movdqu  [r9 + rax], xmm0
    movdqu  [r9 + rax + 16], xmm1
    add     rax, 32
    cmp     rax, r11
    jb      .block
    movdqu  xmm0, [rdx + r11]           ; the last 32, overlapping
    movdqu  xmm1, [rdx + r11 + 16]
    movdqu  [r9 + r11], xmm0
    movdqu  [r9 + r11 + 16], xmm1
    jmp     .copied
.lt32:                                  ; 16 .. 31: the first and last 16
    movdqu  xmm0, [rdx]
    movdqu  xmm1, [rdx + r8 - 16]
    movdqu  [r9], xmm0
    movdqu  [r9 + r8 - 16], xmm1
.copied:
    PUBLISH rcx, r10
.small:                                 ; 1 .. 15 bytes
    cmp     r8, 8
    jb      .lt8
    mov     rax, [rdx]
    mov     r11, [rdx + r8 - 8]
    mov     [r9], rax
    mov     [r9 + r8 - 8], r11
    jmp     .copied
.lt8:
    cmp     r8, 4
    jb      .lt4
    mov     eax, [rdx]
    mov     r11d, [rdx + r8 - 4]
    mov     [r9], eax
    mov     [r9 + r8 - 4], r11d
    jmp     .copied
.lt4:                                   ; 1 .. 3
    movzx   eax, byte [rdx]
    movzx   r11d, byte [rdx + r8 - 1]
    mov     [r9], al
    mov     [r9 + r8 - 1], r11b
    cmp     r8, 3
    jb      .copied
    movzx   eax, byte [rdx + 1]
    mov     [r9 + 1], al
    jmp     .copied
.long:                                  ; memcpy, keeping rdi, rsi, rcx, r10
    push    rdi
    push    rsi
    push    rcx
    push    r10
    sub     rsp, 8                      ; 16-byte alignment at the call
    mov     rdi, r9
    mov     rsi, rdx
    mov     rdx, r8
    call    memcpy wrt ..plt
    add     rsp, 8
    pop     r10
    pop     rcx
    pop     rsi
    pop     rdi
    jmp     .copied
.slow:
    mov     rdx, [rsp - 16]
    mov     rcx, [rsp - 8]
    jmp     mpscq_ring_write_slow wrt ..plt
.after:
    mov     rdx, [rsp - 16]
    mov     rcx, [rsp - 8]
    jmp     mpscq_ring_write_after wrt ..plt   ; r8 = pos
ENDFUNC mpscq_ring_write_x86_64
