; public.asm - enqueue.asm and dequeue.asm as the installed library
; assembles them: the entries mpscq_enqueue_entry_x86_64 and
; mpscq_dequeue_entry_x86_64 also carry the exported names mpscq_enqueue
; and mpscq_dequeue, so that a program's call lands on the routine itself
; rather than on a C function that jumps to it.  The test library
; (which dispatches between the asm and its C twins) and the C-twin
; benchmark library assemble enqueue.asm and dequeue.asm as they are.

%define MPSCQ_PUBLIC_ENTRIES 1
%include "enqueue.asm"
%include "dequeue.asm"
