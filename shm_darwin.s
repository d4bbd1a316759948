// Trampolines to libSystem functions imported in shm_darwin.go and
// futex_darwin.go with //go:cgo_import_dynamic, in the manner of
// golang.org/x/sys/unix/zsyscall_darwin_*.s. The same text assembles for
// amd64 and arm64.

#include "textflag.h"

TEXT shmpkg_shm_open_trampoline<>(SB),NOSPLIT,$0-0
	JMP	shmpkg_shm_open(SB)
GLOBL	·shmpkg_shm_open_trampoline_addr(SB), RODATA, $8
DATA	·shmpkg_shm_open_trampoline_addr(SB)/8, $shmpkg_shm_open_trampoline<>(SB)

TEXT shmpkg_shm_unlink_trampoline<>(SB),NOSPLIT,$0-0
	JMP	shmpkg_shm_unlink(SB)
GLOBL	·shmpkg_shm_unlink_trampoline_addr(SB), RODATA, $8
DATA	·shmpkg_shm_unlink_trampoline_addr(SB)/8, $shmpkg_shm_unlink_trampoline<>(SB)

TEXT shmpkg_ulock_wait_trampoline<>(SB),NOSPLIT,$0-0
	JMP	shmpkg_ulock_wait(SB)
GLOBL	·shmpkg_ulock_wait_trampoline_addr(SB), RODATA, $8
DATA	·shmpkg_ulock_wait_trampoline_addr(SB)/8, $shmpkg_ulock_wait_trampoline<>(SB)

TEXT shmpkg_ulock_wake_trampoline<>(SB),NOSPLIT,$0-0
	JMP	shmpkg_ulock_wake(SB)
GLOBL	·shmpkg_ulock_wake_trampoline_addr(SB), RODATA, $8
DATA	·shmpkg_ulock_wake_trampoline_addr(SB)/8, $shmpkg_ulock_wake_trampoline<>(SB)
