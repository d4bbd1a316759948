/*
 * shm.h: the shm wire protocol (SPEC.md, spec 1) for C11, header-only.
 *
 * Segments created and opened with the same guards as the Go package
 * github.com/mindmeld-go/shm, the liveness mechanism (tokens and OFD presence
 * locks, SPEC.md §5), wait/wake (§3), the Mutex at layout version 2 (§4),
 * the Semaphore (§6) and the SHM1 descriptor-passing message (§8). Written
 * from SPEC.md; clause identifiers in comments (MTX-5) point into it.
 *
 * Use: #include "shm.h" before any other header (it defines _GNU_SOURCE on
 * Linux), or compile with -D_GNU_SOURCE. Needs libc only. Linux first; on
 * macOS and FreeBSD it compiles, waits with __ulock / _umtx_op, and judges
 * peers by PID only (SPEC.md §5.3, with an unknown start time).
 *
 * Errors: every call returning int returns 0 on success, or a negative errno
 * value (-EINVAL, -ETIMEDOUT, ...), except where it says otherwise:
 *   SHM_OWNERDEAD (1, positive): the Mutex is now held by the caller, taken
 *       over from an owner that died holding it (MTX-9). Check or repair the
 *       data it guards before unlocking.
 *   -EBUSY: shm_mutex_trylock found the Mutex held.
 *   -EAGAIN: shm_sem_trywait found the count at 0.
 *   -ETIMEDOUT: a timed call's time ran out.
 *   -EOVERFLOW: shm_sem_post at a count of 2^31-1.
 *   -EPERM: shm_mutex_unlock of a Mutex this process does not hold.
 *   -EINVAL: a bad argument, an invalid name, something that is not a shared
 *       memory object planted under the name, or a received message that fails
 *       a check (PASS-3..PASS-6).
 * shm_strerror(rc) describes any of these.
 *
 * Timeouts are relative, in nanoseconds, measured on CLOCK_MONOTONIC; a
 * negative timeout means no limit.
 *
 * Tokens: this process's token (shm_token) is held in a weak symbol, so every
 * translation unit of a program that includes this header shares one. A child
 * made by fork() without exec shares the parent's token and descriptions: it
 * is the same peer as its parent (SPEC.md LIVE-4).
 */
#ifndef SHM_H
#define SHM_H

#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#elif defined(__FreeBSD__)
#include <sys/umtx.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- constants (SPEC.md) ---------------------------------------------- */

#define SHM_SPEC_VERSION 1
#define SHM_MUTEX_LAYOUT 2
#define SHM_SEM_LAYOUT 1
#define SHM_LIVENESS_VERSION 2

#define SHM_OWNERDEAD 1

#define SHM_MUTEX_TOKLO 0x3fffffffu           /* bits 0-29 */
#define SHM_MUTEX_W 0x80000000u               /* bit 31 */
#define SHM_MUTEX_ID 0xffffffff3fffffffull    /* ID_MASK */
#define SHM_TOKEN_BITS 46
#define SHM_PRESENCE_BASE (1ull << 62)
#define SHM_PRESENCE_SHIFT 16
#define SHM_SEM_MAX 0x7fffffffu

#define SHM_PASS_LEN 16
#define SHM_PASS_RDONLY 1u
#define SHM_PASS_MAXFDS 64

#ifndef MSG_CMSG_CLOEXEC /* macOS has none; descriptors then arrive without close-on-exec */
#define MSG_CMSG_CLOEXEC 0
#endif

#if defined(__linux__)
#define SHM_NAME_MAX 255 /* bytes after the slash (NAME-2) */
#elif defined(__APPLE__)
#define SHM_NAME_MAX 30
#else
#define SHM_NAME_MAX 1022
#endif

#if defined(__linux__)
#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_WRITE
#define F_SEAL_WRITE 0x0008
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#define SHM__TMPFS_MAGIC 0x01021994u
#define SHM__HUGETLBFS_MAGIC 0x958458f6u
#endif

/* ---- types -------------------------------------------------------------- */

/* A Mutex, layout version 2 (SPEC.md §4): one 8-byte-aligned 64-bit word,
 * zero when unlocked. */
typedef struct shm_mutex {
	_Alignas(8) _Atomic uint64_t w;
} shm_mutex;

/* A Semaphore, layout version 1 (SPEC.md §6): count at offset 0, waiters at
 * offset 4. Zero-filled: count 0. */
typedef struct shm_sem {
	_Atomic uint32_t count;
	_Atomic uint32_t waiters;
} shm_sem;

_Static_assert(sizeof(shm_mutex) == 8, "Mutex is 8 bytes");
_Static_assert(sizeof(shm_sem) == 8, "Semaphore is 8 bytes");
_Static_assert(offsetof(shm_sem, waiters) == 4, "Semaphore waiters at offset 4");

/* A mapped segment. */
typedef struct shm_seg {
	int fd;           /* the description the mapping and its presence lock are on */
	void *addr;       /* the mapping; NULL when closed */
	size_t size;
	int readonly;
	int64_t presence; /* offset of this mapping's presence lock, -1 for none */
	char name[SHM_NAME_MAX + 2]; /* canonical "/x"; "" for a received segment */
} shm_seg;

/* ---- errors ------------------------------------------------------------- */

static inline const char *shm_strerror(int rc) {
	switch (rc) {
	case 0: return "success";
	case SHM_OWNERDEAD: return "shm: previous owner died holding the lock (lock held)";
	case -EBUSY: return "shm: held by a live process (mutex held, or ring end attached)";
	case -EAGAIN: return "shm: would block (semaphore count 0, ring full or empty)";
	case -ETIMEDOUT: return "shm: timed out";
	case -EOVERFLOW: return "shm: semaphore count at its maximum";
	case -EPERM: return "shm: operation not permitted (unlock of a mutex this process does not hold?)";
	case -EBADMSG: return "shm: ring: corrupt (an invalid value read from shared memory)";
	case -EPROTO: return "shm: ring: not a ring of this layout version (bad magic or version)";
	case -EMSGSIZE: return "shm: ring: message too large (or receive buffer too small; message kept)";
	case -EOWNERDEAD: return "shm: ring: peer process died";
	case -EPIPE: return "shm: ring: consumer closed";
	case -ENODATA: return "shm: ring: end of stream (every producer gone, ring drained)";
	}
	return rc < 0 ? strerror(-rc) : "shm: unknown result";
}

/* ---- time --------------------------------------------------------------- */

static inline int64_t shm__now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void shm__sleep_ns(int64_t ns) {
	struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ---- wait and wake (SPEC.md §3) ----------------------------------------- */

#if defined(__APPLE__)
/* xnu bsd/sys/ulock.h; libSystem exports these (macOS 10.12+, the shared
 * compare-and-wait since 10.15). */
extern int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
extern int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
#define SHM__UL_COMPARE_AND_WAIT_SHARED 3
#define SHM__ULF_WAKE_ALL 0x00000100
#endif

/* shm_wait blocks while *addr == val, for at most timeout_ns (<0: no limit).
 * It returns 0 when woken, when the word did not hold val, or spuriously
 * (WAIT-3: re-check in a loop); -ETIMEDOUT; or another negative errno. */
static inline int shm_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
#if defined(__linux__)
	struct timespec ts, *tp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tp = &ts;
	}
	/* WAIT-1: FUTEX_WAIT (0), the shared form: no FUTEX_PRIVATE_FLAG. */
	long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val, tp, NULL, 0);
	if (r == 0) return 0;
	if (errno == EAGAIN || errno == EINTR) return 0;
	return -errno;
#elif defined(__APPLE__)
	uint32_t us = 0;
	if (timeout_ns >= 0) {
		int64_t u = (timeout_ns + 999) / 1000;
		us = u <= 0 ? 1 : (u > UINT32_MAX ? UINT32_MAX : (uint32_t)u);
	}
	int r = __ulock_wait(SHM__UL_COMPARE_AND_WAIT_SHARED, (void *)addr, val, us);
	if (r >= 0) return 0;
	if (errno == EINTR || errno == EFAULT) return 0;
	return -errno;
#elif defined(__FreeBSD__)
	struct _umtx_time ut;
	void *tp = NULL;
	size_t tsz = 0;
	if (timeout_ns >= 0) {
		memset(&ut, 0, sizeof ut);
		ut._timeout.tv_sec = (time_t)(timeout_ns / 1000000000);
		ut._timeout.tv_nsec = (long)(timeout_ns % 1000000000);
		ut._clockid = CLOCK_MONOTONIC;
		tp = &ut;
		tsz = sizeof ut;
	}
	int r = _umtx_op((void *)addr, UMTX_OP_WAIT_UINT, val, (void *)(uintptr_t)tsz, tp);
	if (r == 0) return 0;
	if (errno == EINTR) return 0;
	return -errno;
#else
	/* Polling fallback. */
	int64_t end = timeout_ns >= 0 ? shm__now_ns() + timeout_ns : INT64_MAX;
	while (atomic_load(addr) == val) {
		if (shm__now_ns() >= end) return -ETIMEDOUT;
		shm__sleep_ns(1000000);
	}
	return 0;
#endif
}

/* shm_wake wakes up to n waiters (INT_MAX: all) on addr; it returns how many
 * it woke where the platform says (0 otherwise), or a negative errno.
 * Change the word before waking (MTX-6, WAIT-4). */
static inline int shm_wake(_Atomic uint32_t *addr, int n) {
	if (n <= 0) return 0;
#if defined(__linux__)
	long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
	return r < 0 ? -errno : (int)r;
#elif defined(__APPLE__)
	uint32_t op = SHM__UL_COMPARE_AND_WAIT_SHARED | (n > 1 ? SHM__ULF_WAKE_ALL : 0);
	int r = __ulock_wake(op, (void *)addr, 0);
	if (r < 0 && errno != ENOENT) return -errno;
	return 0;
#elif defined(__FreeBSD__)
	int r = _umtx_op((void *)addr, UMTX_OP_WAKE, (u_long)n, NULL, NULL);
	return r < 0 ? -errno : 0;
#else
	(void)addr;
	return 0;
#endif
}

/* ---- tokens (SPEC.md §5.1) ---------------------------------------------- */

/* One per process, whatever the number of translation units. */
__attribute__((weak)) _Atomic uint64_t shm__token_value;
__attribute__((weak)) _Atomic uint32_t shm__presence_seq;

static inline int shm_valid_token(uint64_t tok) {
#if defined(__linux__)
	return (tok >> SHM_TOKEN_BITS) == 0 && (tok & SHM_MUTEX_TOKLO) != 0;
#else
	return (tok >> 62) == 0 && (tok & SHM_MUTEX_TOKLO) != 0;
#endif
}

static inline uint64_t shm__new_token(void) {
#if defined(__linux__)
	/* LIVE-1: a random 46-bit token whose low 30 bits are not all zero. */
	for (;;) {
		uint64_t t = 0;
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, &t, sizeof t);
			close(fd);
			if (n != (ssize_t)sizeof t) t = 0;
		}
		if (t == 0) {
			/* No /dev/urandom: mix what differs between processes. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			t = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec << 20 ^
			    (uint64_t)getpid() * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)&ts;
			t ^= t >> 31;
			t *= 0x94d049bb133111ebull;
			t ^= t >> 29;
		}
		t &= (1ull << SHM_TOKEN_BITS) - 1;
		if (t & SHM_MUTEX_TOKLO) return t;
	}
#else
	/* §5.1 elsewhere: fold(start) << 30 | pid, with the start time taken as
	 * unknown (0): peers then judge this process by its PID alone. */
	return (uint64_t)getpid() & SHM_MUTEX_TOKLO;
#endif
}

/* shm_token returns this process's token: nonzero, the same for the life of
 * the process. */
static inline uint64_t shm_token(void) {
	uint64_t t = atomic_load_explicit(&shm__token_value, memory_order_acquire);
	if (t != 0) return t;
	uint64_t nt = shm__new_token();
	if (atomic_compare_exchange_strong(&shm__token_value, &t, nt)) return nt;
	return t;
}

/* ---- presence locks (SPEC.md §5.2) -------------------------------------- */

#if defined(__linux__)
static inline int shm__fcntl_lock(int fd, int cmd, struct flock *lk) {
	int r;
	do {
		r = fcntl(fd, cmd, lk);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static inline void shm__presence_range(struct flock *lk, uint64_t tok, short type) {
	memset(lk, 0, sizeof *lk);
	lk->l_type = type;
	lk->l_whence = SEEK_SET;
	lk->l_start = (off_t)(SHM_PRESENCE_BASE + (tok << SHM_PRESENCE_SHIFT));
	lk->l_len = (off_t)1 << SHM_PRESENCE_SHIFT;
	lk->l_pid = 0;
}
#endif

/* LIVE-3: take this mapping's presence lock on fd. Returns 0 (with *off set,
 * -1 when no lock could be or need be taken) or a negative errno. */
static inline int shm__take_presence(int fd, int64_t *off) {
	*off = -1;
#if defined(__linux__)
	uint64_t tok = shm_token();
	int64_t pause = 100000, deadline = shm__now_ns() + 1000000000;
	for (int i = 0;; i++) {
		if (i > 0 && i % 64 == 0) {
			/* Every byte taken: by our own descriptions, or by an observer's
			 * granted read lock (LIVE-6) that goes when it closes. Retry for
			 * up to a second, then fail: never map without presence. */
			if (shm__now_ns() > deadline) return -EAGAIN;
			shm__sleep_ns(pause);
			pause = pause * 2 > 10000000 ? 10000000 : pause * 2;
		}
		uint64_t n = atomic_fetch_add(&shm__presence_seq, 1) & ((1u << SHM_PRESENCE_SHIFT) - 1);
		struct flock lk;
		memset(&lk, 0, sizeof lk);
		lk.l_type = F_WRLCK;
		lk.l_whence = SEEK_SET;
		lk.l_start = (off_t)(SHM_PRESENCE_BASE + (tok << SHM_PRESENCE_SHIFT) + n);
		lk.l_len = 1;
		int r = shm__fcntl_lock(fd, F_OFD_SETLK, &lk);
		if (r == 0) {
			*off = (int64_t)lk.l_start;
			return 0;
		}
		if (r == -EAGAIN || r == -EACCES) continue;
		if (r == -EINVAL) return 0; /* no OFD locks: peers cannot ask either */
		return r;
	}
#else
	(void)fd;
#endif
	return 0;
}

static inline void shm__drop_presence(int fd, int64_t off) {
#if defined(__linux__)
	if (off < 0) return;
	struct flock lk;
	memset(&lk, 0, sizeof lk);
	lk.l_type = F_UNLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = (off_t)off;
	lk.l_len = 1;
	shm__fcntl_lock(fd, F_OFD_SETLK, &lk);
#else
	(void)fd;
	(void)off;
#endif
}

/* shm_peer_alive reports (1) whether the process of token tok may still map
 * seg writable, or (0) that it definitely does not (LIVE-5). "Cannot tell"
 * is 1. This process's own token is 1 while seg is open. */
static inline int shm_peer_alive(const shm_seg *seg, uint64_t tok) {
	if (!shm_valid_token(tok)) return 0;
	if (tok == shm_token()) return seg->addr != NULL;
#if defined(__linux__)
	if (seg->fd < 0) return 1;
	struct flock lk;
	shm__presence_range(&lk, tok, F_RDLCK);
	if (shm__fcntl_lock(seg->fd, F_OFD_GETLK, &lk) != 0) return 1;
	return lk.l_type != F_UNLCK;
#else
	(void)seg;
	pid_t pid = (pid_t)(tok & SHM_MUTEX_TOKLO);
	if (kill(pid, 0) == 0 || errno == EPERM) return 1;
	return errno == ESRCH ? 0 : 1;
#endif
}

/* shm_wait_peer_gone waits until the process of token tok no longer maps seg
 * (LIVE-6): 0 once it is gone, -ETIMEDOUT, or a negative errno. With no
 * timeout it blocks in F_OFD_SETLKW on a description of its own. */
static inline int shm_wait_peer_gone(const shm_seg *seg, uint64_t tok, int64_t timeout_ns) {
	if (!shm_valid_token(tok)) return 0;
	if (seg->addr == NULL) return -EBADF;
#if defined(__linux__)
	if (timeout_ns < 0 && tok != shm_token()) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", seg->fd);
		int fd2 = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd2 >= 0) {
			struct flock lk;
			shm__presence_range(&lk, tok, F_RDLCK);
			int r = shm__fcntl_lock(fd2, F_OFD_SETLKW, &lk);
			close(fd2); /* drops the read lock with the description */
			if (r == 0) return 0;
		}
	}
#endif
	int64_t end = timeout_ns >= 0 ? shm__now_ns() + timeout_ns : INT64_MAX;
	for (;;) {
		if (!shm_peer_alive(seg, tok)) return 0;
		int64_t left = end - shm__now_ns();
		if (left <= 0) return -ETIMEDOUT;
		shm__sleep_ns(left < 1000000 ? left : 1000000);
	}
}

/* ---- names (SPEC.md §2.1) ----------------------------------------------- */

/* shm_canonical_name writes name with exactly one leading slash into out
 * (SHM_NAME_MAX + 2 bytes), or returns -EINVAL / -ENAMETOOLONG (NAME-1/2). */
static inline int shm_canonical_name(const char *name, char out[SHM_NAME_MAX + 2]) {
	if (name == NULL) return -EINVAL;
	const char *rest = name[0] == '/' ? name + 1 : name;
	size_t n = strlen(rest);
	if (n == 0) return -EINVAL;
	if (strcmp(rest, ".") == 0 || strcmp(rest, "..") == 0) return -EINVAL;
	if (strchr(rest, '/') != NULL) return -EINVAL;
	if (n > SHM_NAME_MAX) return -ENAMETOOLONG;
	out[0] = '/';
	memcpy(out + 1, rest, n + 1);
	return 0;
}

#if defined(__linux__)
static inline void shm__path(char *buf, size_t len, const char *cname) {
	snprintf(buf, len, "/dev/shm%s", cname);
}
#endif

/* ---- segments (SPEC.md §2) ---------------------------------------------- */

static inline int shm__fstat_size(int fd, size_t *size) {
	struct stat st;
	int r;
	do {
		r = fstat(fd, &st);
	} while (r < 0 && errno == EINTR);
	if (r < 0) return -errno;
	if (!S_ISREG(st.st_mode)) return -EINVAL; /* OPEN-2 */
	if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) return -EINVAL;
	*size = (size_t)st.st_size;
	return 0;
}

/* MAP-1: map fd into seg, and take the presence lock when writable. On error
 * fd is closed. */
static inline int shm__map(shm_seg *seg, int fd, size_t size, int readonly) {
	int prot = readonly ? PROT_READ : (PROT_READ | PROT_WRITE);
	void *p = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		close(fd);
		return e;
	}
	int64_t off = -1;
	if (!readonly) {
		int r = shm__take_presence(fd, &off);
		if (r < 0) {
			munmap(p, size);
			close(fd);
			return r;
		}
	}
	seg->fd = fd;
	seg->addr = p;
	seg->size = size;
	seg->readonly = readonly;
	seg->presence = off;
	return 0;
}

static inline void shm__seg_init(shm_seg *seg) {
	memset(seg, 0, sizeof *seg);
	seg->fd = -1;
	seg->presence = -1;
}

/* shm_seg_create creates the segment name exclusively, size bytes, with
 * exactly the permission bits perm, zero-filled, and maps it read-write
 * (§2.3). -EEXIST if the name is taken. */
static inline int shm_seg_create(shm_seg *seg, const char *name, size_t size, mode_t perm) {
	shm__seg_init(seg);
	char cname[SHM_NAME_MAX + 2];
	int r = shm_canonical_name(name, cname);
	if (r < 0) return r;
	if (size == 0 || (uint64_t)size > (uint64_t)INT64_MAX || (perm & ~(mode_t)0777) != 0) return -EINVAL;
	perm &= 0777;
#if defined(__linux__)
	char final[SHM_NAME_MAX + 16];
	shm__path(final, sizeof final, cname);
	char tmp[64] = "";
	int fd;
	do {
		fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, perm); /* CRE-1 */
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -errno;
		uint64_t rnd = shm__new_token() ^ ((uint64_t)shm__now_ns() << 17);
		snprintf(tmp, sizeof tmp, "/dev/shm/.shm-tmp-%016llx", (unsigned long long)rnd);
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
		if (fd < 0) return -errno;
	}
#define SHM__FAIL(e)                              \
	do {                                      \
		int e_ = (e);                     \
		close(fd);                        \
		if (tmp[0]) unlink(tmp);          \
		return e_;                        \
	} while (0)
	if (fchmod(fd, perm) < 0) SHM__FAIL(-errno); /* CRE-2 */
	r = fallocate(fd, 0, 0, (off_t)size);       /* CRE-3 */
	if (r < 0) {
		if (errno != EOPNOTSUPP) SHM__FAIL(-errno);
		if (ftruncate(fd, (off_t)size) < 0) SHM__FAIL(-errno);
	}
	if (tmp[0]) { /* CRE-4 */
		r = link(tmp, final);
	} else {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		r = linkat(AT_FDCWD, proc, AT_FDCWD, final, AT_SYMLINK_FOLLOW);
		if (r < 0 && errno == ENOENT) r = linkat(fd, "", AT_FDCWD, final, AT_EMPTY_PATH);
	}
	if (r < 0) SHM__FAIL(-errno);
	if (tmp[0]) unlink(tmp);
#undef SHM__FAIL
	r = shm__map(seg, fd, size, 0);
	if (r < 0) { /* CRE-5 */
		unlink(final);
		return r;
	}
#else
	int fd = shm_open(cname, O_RDWR | O_CREAT | O_EXCL, perm);
	if (fd < 0) return -errno;
	if (fchmod(fd, perm) < 0 && errno != EINVAL) {
		r = -errno;
		close(fd);
		shm_unlink(cname);
		return r;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		close(fd);
		shm_unlink(cname);
		return r;
	}
	size_t got = size;
	if (shm__fstat_size(fd, &got) == 0 && got > size) size = got; /* macOS rounds up */
	r = shm__map(seg, fd, size, 0);
	if (r < 0) {
		shm_unlink(cname);
		return r;
	}
#endif
	memcpy(seg->name, cname, sizeof cname);
	return 0;
}

/* shm_seg_open opens the existing segment name and maps size bytes of it
 * (0: all of it), read-only if readonly (§2.4). -ENOENT if it is missing;
 * -EINVAL if it is empty, smaller than size, or not a shared memory object. */
static inline int shm_seg_open(shm_seg *seg, const char *name, int readonly, size_t size) {
	shm__seg_init(seg);
	char cname[SHM_NAME_MAX + 2];
	int r = shm_canonical_name(name, cname);
	if (r < 0) return r;
	int acc = readonly ? O_RDONLY : O_RDWR;
	int fd;
#if defined(__linux__)
	char path[SHM_NAME_MAX + 16];
	shm__path(path, sizeof path, cname);
	do {
		fd = open(path, acc | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK); /* OPEN-1 */
	} while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		if (errno == ELOOP || errno == EISDIR || errno == ENXIO) return -EINVAL;
		return -errno;
	}
#else
	fd = shm_open(cname, acc, 0);
	if (fd < 0) return -errno;
#endif
	size_t have = 0; /* set by shm__fstat_size; initialised for gcc -O2 -Wmaybe-uninitialized */
	r = shm__fstat_size(fd, &have);
	if (r == 0 && (have == 0 || size > have)) r = -EINVAL; /* OPEN-3 */
	if (r < 0) {
		close(fd);
		return r;
	}
	r = shm__map(seg, fd, size ? size : have, readonly);
	if (r < 0) return r;
	memcpy(seg->name, cname, sizeof cname);
	return 0;
}

/* shm_seg_close releases the presence lock, unmaps and closes (MAP-2). A
 * Mutex this process holds in the segment is let go of. */
static inline int shm_seg_close(shm_seg *seg) {
	if (seg->addr == NULL) return -EBADF;
	shm__drop_presence(seg->fd, seg->presence);
	int r = munmap(seg->addr, seg->size) < 0 ? -errno : 0;
	if (close(seg->fd) < 0 && r == 0) r = -errno;
	seg->addr = NULL;
	seg->fd = -1;
	seg->presence = -1;
	return r;
}

/* shm_seg_unlink removes a segment's name (MAP-3). */
static inline int shm_seg_unlink(const char *name) {
	char cname[SHM_NAME_MAX + 2];
	int r = shm_canonical_name(name, cname);
	if (r < 0) return r;
#if defined(__linux__)
	char path[SHM_NAME_MAX + 16];
	shm__path(path, sizeof path, cname);
	if (unlink(path) < 0) return errno == EISDIR ? -EINVAL : -errno;
#else
	if (shm_unlink(cname) < 0) return -errno;
#endif
	return 0;
}

/* ---- Mutex (SPEC.md §4) ------------------------------------------------- */

static inline uint64_t shm_owner_word(uint64_t tok) {
	return (tok & SHM_MUTEX_TOKLO) | ((tok >> 30) << 32);
}

static inline uint64_t shm_owner_token(uint64_t w) {
	return (w & SHM_MUTEX_TOKLO) | ((w >> 32) << 30);
}

/* The futex word: the low 32 bits of the Mutex (§4.1). */
static inline _Atomic uint32_t *shm__mutex_futex(shm_mutex *m) {
	char *p = (char *)&m->w;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	p += 4;
#endif
	return (_Atomic uint32_t *)(void *)p;
}

static inline void shm_mutex_init(shm_mutex *m) { atomic_store(&m->w, 0); }

/* shm_mutex_trylock: 0 with the lock, or -EBUSY (MTX-3). */
static inline int shm_mutex_trylock(shm_mutex *m) {
	uint64_t own = shm_owner_word(shm_token());
	uint64_t v = atomic_load_explicit(&m->w, memory_order_relaxed);
	if ((uint32_t)v != 0) return -EBUSY;
	if (atomic_compare_exchange_strong_explicit(&m->w, &v, own, memory_order_acquire, memory_order_relaxed))
		return 0;
	return -EBUSY;
}

/* MTX-9: replace dead owner v by ownW. */
static inline int shm__mutex_takeover(shm_mutex *m, uint64_t v, uint64_t ownW) {
	for (int i = 0; i < 100; i++) {
		uint64_t cur = atomic_load_explicit(&m->w, memory_order_relaxed);
		if ((cur & SHM_MUTEX_ID) != (v & SHM_MUTEX_ID)) return 0;
		if (atomic_compare_exchange_strong_explicit(&m->w, &cur, ownW, memory_order_acquire,
		                                            memory_order_relaxed))
			return 1;
	}
	return 0;
}

/* How long a waiter sleeps before it asks the kernel about the owner again.
 * (The Go side learns of a death from a helper thread in F_OFD_SETLKW; this
 * header, without threads, polls: MTX-8 allows it, at most 1 s.) */
#ifndef SHM_MUTEX_POLL_NS
#define SHM_MUTEX_POLL_NS 5000000
#endif

/* shm_mutex_timedlock locks m, waiting at most timeout_ns (<0: no limit).
 * seg is the segment m lies in, for owner checks (NULL: none; a dead owner's
 * lock is then never taken over). Returns 0 with the lock, SHM_OWNERDEAD
 * with the lock (the previous owner died holding it), -ETIMEDOUT without it,
 * -EROFS for a read-only seg, or another negative errno. */
static inline int shm_mutex_timedlock(shm_seg *seg, shm_mutex *m, int64_t timeout_ns) {
	if (seg != NULL && seg->readonly) return -EROFS;
	uint64_t own = shm_owner_word(shm_token());
	uint64_t ownW = own | SHM_MUTEX_W;
	uint64_t v = 0;
	if (atomic_compare_exchange_strong_explicit(&m->w, &v, own, memory_order_acquire, memory_order_relaxed))
		return 0; /* MTX-1 */
	_Atomic uint32_t *fw = shm__mutex_futex(m);
	int64_t end = timeout_ns >= 0 ? shm__now_ns() + timeout_ns : INT64_MAX;
	uint64_t checked = 0;
	int check = 1;
	for (;;) { /* MTX-2 */
		v = atomic_load_explicit(&m->w, memory_order_relaxed);
		uint32_t lo = (uint32_t)v;
		if (lo == 0) {
			if (atomic_compare_exchange_strong_explicit(&m->w, &v, ownW, memory_order_acquire,
			                                            memory_order_relaxed))
				return 0;
			continue;
		}
		int64_t left = end == INT64_MAX ? INT64_MAX : end - shm__now_ns();
		if (left <= 0) return -ETIMEDOUT;
		int64_t sleep = 1000000000; /* MTX-2: each sleep at most 1 s */
		if (seg != NULL && seg->addr != NULL && (v & SHM_MUTEX_ID) != own) {
			uint64_t t = shm_owner_token(v);
			if (t != checked || check) {
				checked = t;
				check = 0;
				if (!shm_peer_alive(seg, t)) { /* MTX-8 */
					if (shm__mutex_takeover(m, v, ownW)) return SHM_OWNERDEAD;
					continue;
				}
			}
			sleep = SHM_MUTEX_POLL_NS;
		}
		if ((lo & SHM_MUTEX_W) == 0) {
			uint64_t nv = v | SHM_MUTEX_W;
			if (!atomic_compare_exchange_strong_explicit(&m->w, &v, nv, memory_order_relaxed,
			                                             memory_order_relaxed))
				continue;
			lo |= SHM_MUTEX_W;
		}
		if (left < sleep) sleep = left;
		int r = shm_wait(fw, lo, sleep);
		if (r == -ETIMEDOUT) {
			check = 1;
		} else if (r < 0) {
			return r;
		}
	}
}

/* shm_mutex_lock locks m, waiting as long as it takes: 0 or SHM_OWNERDEAD,
 * both with the lock, or a negative errno. */
static inline int shm_mutex_lock(shm_seg *seg, shm_mutex *m) { return shm_mutex_timedlock(seg, m, -1); }

/* shm_mutex_unlock unlocks m (MTX-5): 0, or -EPERM if this process does not
 * hold it (then m is unchanged). */
static inline int shm_mutex_unlock(shm_mutex *m) {
	uint64_t own = shm_owner_word(shm_token());
	for (;;) {
		uint64_t v = atomic_load_explicit(&m->w, memory_order_relaxed);
		if ((v & SHM_MUTEX_ID) != own) return -EPERM;
		if (atomic_compare_exchange_strong_explicit(&m->w, &v, 0, memory_order_release, memory_order_relaxed)) {
			if ((uint32_t)v & SHM_MUTEX_W) shm_wake(shm__mutex_futex(m), 1);
			return 0;
		}
	}
}

/* ---- Semaphore (SPEC.md §6) --------------------------------------------- */

static inline void shm_sem_init(shm_sem *s, uint32_t value) {
	atomic_store(&s->count, value);
	atomic_store(&s->waiters, 0);
}

/* shm_sem_post adds one (SEM-1, SEM-2): 0, or -EOVERFLOW changing nothing. */
static inline int shm_sem_post(shm_sem *s) {
	uint32_t c = atomic_load(&s->count);
	for (;;) {
		if (c >= SHM_SEM_MAX) return -EOVERFLOW;
		if (atomic_compare_exchange_weak(&s->count, &c, c + 1)) break; /* seq_cst: SEM-6 */
	}
	if (atomic_load(&s->waiters) != 0) shm_wake(&s->count, 1); /* seq_cst: SEM-6 */
	return 0;
}

/* shm_sem_trywait takes one if the count is positive: 0, or -EAGAIN (SEM-3). */
static inline int shm_sem_trywait(shm_sem *s) {
	uint32_t c = atomic_load(&s->count);
	for (;;) {
		if (c == 0) return -EAGAIN;
		if (atomic_compare_exchange_weak(&s->count, &c, c - 1)) return 0;
	}
}

/* SEM-5 */
static inline void shm__sem_leave(shm_sem *s) {
	atomic_fetch_sub(&s->waiters, 1);
	if (atomic_load(&s->count) != 0 && atomic_load(&s->waiters) != 0) shm_wake(&s->count, 1);
}

/* shm_sem_timedwait takes one, waiting at most timeout_ns (<0: no limit) for
 * the count to be positive (SEM-4): 0, -ETIMEDOUT, or a negative errno. */
static inline int shm_sem_timedwait(shm_sem *s, int64_t timeout_ns) {
	if (shm_sem_trywait(s) == 0) return 0;
	int64_t end = timeout_ns >= 0 ? shm__now_ns() + timeout_ns : INT64_MAX;
	atomic_fetch_add(&s->waiters, 1); /* seq_cst: SEM-6 */
	for (;;) {
		if (shm_sem_trywait(s) == 0) {
			atomic_fetch_sub(&s->waiters, 1);
			return 0;
		}
		int64_t left = end == INT64_MAX ? INT64_MAX : end - shm__now_ns();
		if (left <= 0) {
			shm__sem_leave(s);
			return -ETIMEDOUT;
		}
		int64_t sleep = left < 1000000000 ? left : 1000000000;
		int r = shm_wait(&s->count, 0, sleep);
		if (r < 0 && r != -ETIMEDOUT) {
			shm__sem_leave(s);
			return r;
		}
	}
}

static inline int shm_sem_wait(shm_sem *s) { return shm_sem_timedwait(s, -1); }

static inline uint32_t shm_sem_value(shm_sem *s) {
	uint32_t c = atomic_load(&s->count);
	return c > SHM_SEM_MAX ? SHM_SEM_MAX : c;
}

/* ---- descriptor passing (SPEC.md §8) ------------------------------------ */

static inline void shm__put_le32(unsigned char *b, uint32_t v) {
	for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static inline void shm__put_le64(unsigned char *b, uint64_t v) {
	for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t shm__le32(const unsigned char *b) {
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--) v = v << 8 | b[i];
	return v;
}
static inline uint64_t shm__le64(const unsigned char *b) {
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
	return v;
}

/* shm_send_segment sends seg over the AF_UNIX socket sock as an SHM1 message,
 * with a freshly opened description of its file (PASS-1, PASS-2). */
static inline int shm_send_segment(int sock, const shm_seg *seg) {
	if (seg->addr == NULL) return -EBADF;
	size_t size;
	int r = shm__fstat_size(seg->fd, &size);
	if (r < 0) return r;
	int fd;
#if defined(__linux__)
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", seg->fd);
	fd = open(path, (seg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) return -errno;
#else
	/* No /proc: other systems have no OFD locks to carry along (§5.3). */
	fd = fcntl(seg->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) return -errno;
#endif
	unsigned char msg[SHM_PASS_LEN];
	memcpy(msg, "SHM1", 4);
	shm__put_le32(msg + 4, seg->readonly ? SHM_PASS_RDONLY : 0);
	shm__put_le64(msg + 8, (uint64_t)size);
	struct iovec iov = {msg, sizeof msg};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof cm);
	struct msghdr mh;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof cm.buf;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	ssize_t n;
	do {
		n = sendmsg(sock, &mh, 0);
	} while (n < 0 && errno == EINTR);
	r = n < 0 ? -errno : (n != (ssize_t)sizeof msg ? -EIO : 0);
	close(fd);
	return r;
}

/* shm_recv_segment receives an SHM1 message from sock and maps the segment
 * into seg (PASS-3..PASS-6). max_size 0 means no limit. -EINVAL for a
 * message that fails a check, 0 with seg->addr == NULL at end of file. */
static inline int shm_recv_segment(int sock, shm_seg *seg, size_t max_size, int readonly) {
	shm__seg_init(seg);
	unsigned char msg[SHM_PASS_LEN];
	struct iovec iov = {msg, sizeof msg};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(SHM_PASS_MAXFDS * sizeof(int))];
	} cm;
	struct msghdr mh;
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof cm.buf;
	ssize_t n;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) return -errno;
	int fds[SHM_PASS_MAXFDS];
	int nfd = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfd < SHM_PASS_MAXFDS; i++)
			memcpy(&fds[nfd++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	int r = 0;
	if (n == 0 && nfd == 0) return 0; /* end of file */
	if ((mh.msg_flags & MSG_CTRUNC) || nfd != 1) r = -EINVAL; /* PASS-3 */
	while (r == 0 && n < (ssize_t)sizeof msg) {
		ssize_t m = recv(sock, msg + n, sizeof msg - (size_t)n, 0);
		if (m < 0 && errno == EINTR) continue;
		if (m <= 0) r = -EINVAL;
		else n += m;
	}
	if (r == 0 && (n != (ssize_t)sizeof msg || memcmp(msg, "SHM1", 4) != 0)) r = -EINVAL; /* VER-2 */
	uint32_t flags = shm__le32(msg + 4);
	uint64_t want = shm__le64(msg + 8);
	int fd = nfd == 1 ? fds[0] : -1;
	int fl = 0;
	size_t size = 0;
	if (r == 0) { /* PASS-4 */
		fl = fcntl(fd, F_GETFL);
		if (fl < 0) r = -EINVAL;
#ifdef O_PATH
		else if (fl & O_PATH) r = -EINVAL;
#endif
		else if ((fl & O_ACCMODE) != O_RDONLY && (fl & O_ACCMODE) != O_RDWR) r = -EINVAL;
	}
	if (r == 0 && shm__fstat_size(fd, &size) < 0) r = -EINVAL;
#if defined(__linux__)
	if (r == 0) {
		struct statfs sfs;
		if (fstatfs(fd, &sfs) < 0) r = -EINVAL;
		else if ((uint32_t)sfs.f_type != SHM__TMPFS_MAGIC && (uint32_t)sfs.f_type != SHM__HUGETLBFS_MAGIC)
			r = -EINVAL;
	}
#endif
	if (r == 0 && (want == 0 || want != (uint64_t)size || (max_size && size > max_size))) r = -EINVAL;
	if (r < 0) {
		for (int i = 0; i < nfd; i++) close(fds[i]);
		return r;
	}
	/* PASS-6 */
	int ro = readonly || (fl & O_ACCMODE) == O_RDONLY || (flags & SHM_PASS_RDONLY);
#if defined(__linux__)
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) ro = 1;
	if (!ro) { /* PASS-5: a description of our own */
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		int own = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (own < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		close(fd);
		fd = own;
	}
#endif
	return shm__map(seg, fd, size, ro);
}


/* ---- message ring (SPEC.md §9, layout version 3; README "Memory layout") */
/*
 * Written from the README's layout table and its 14 steps, not from the Go
 * code; notes/cring.md lists where those texts left a choice open and what
 * this header chose. Step numbers in comments ("step 7") point there.
 */

#define SHM_RING_VERSION 3
#define SHM_RING_MAGIC 0x00474e49524d4853ull
#define SHM_ECORRUPT (-EBADMSG)
#define SHM_ENOTRING (-EPROTO)
#define SHM_ETOOLARGE (-EMSGSIZE)
#define SHM_EPEERDEAD (-EOWNERDEAD)
#define SHM_EPEERCLOSED (-EPIPE)
#define SHM_EOF (-ENODATA)
#define SHM_RING_POLLING 1

#define SHM__RH 384u               /* header bytes */
#define SHM__RSLOT 64u             /* bytes per producer slot */
#define SHM__RMAXSLOTS 1024u
#define SHM__RMINCAP 64ull
#define SHM__RMAXCAP (1ull << 30)
#define SHM__R_DATA 1u
#define SHM__R_PAD 2u
#define SHM__R_CHECK_NS 100000000ll /* peers looked at every 100 ms while blocked */
#define SHM__R_SLEEP_NS 100000000ll /* a futex sleep lasts at most this */
#define SHM__R_SPINS 2000
#define SHM__R_YIELDS 50
#define SHM__R_HOLD_NS 2000ll       /* see shm__ring_hold */

/* header offsets */
enum {
	SHM__O_MAGIC = 0, SHM__O_VERSION = 8, SHM__O_FLAGS = 12, SHM__O_CAP = 16, SHM__O_MAXMSG = 24,
	SHM__O_SLOTS = 32, SHM__O_DOFF = 40, SHM__O_TAIL = 64, SHM__O_COMMITTED = 72, SHM__O_CBYTES = 80, SHM__O_FULLWAITS = 88, SHM__O_HEAD = 128,
	SHM__O_RELEASED = 136, SHM__O_RBYTES = 144, SHM__O_EMPTYWAITS = 152, SHM__O_CWAIT = 192, SHM__O_PWAIT = 256, SHM__O_CTOK = 320,
	SHM__O_CPID = 328, SHM__O_CSTATE = 336, SHM__O_ATTACHES = 340, SHM__O_PBEGUN = 344,
	SHM__O_PTAKEOVERS = 348, SHM__O_REAPED = 352, SHM__O_CTAKEOVERS = 356, SHM__O_RECOVERED = 360,
	SHM__O_CORRUPTIONS = 364, SHM__O_PSLEEPS = 368, SHM__O_CSLEEPS = 376,
	/* within a slot */
	SHM__S_TOK = 0, SHM__S_PID = 8, SHM__S_CSTART = 16, SHM__S_CEND = 24, SHM__S_COUNT = 32, SHM__S_BYTES = 40
};

typedef struct shm_ring {
	shm_seg seg;          /* the mapping (a copy of the caller's for *_in) */
	unsigned char *base;  /* header */
	unsigned char *data;  /* data area */
	uint64_t cap, mask, max_msg;
	uint32_t nslots;
	int multi;
	int own_seg;          /* shm_ring_close closes seg */
	int xfence;           /* registered for the sleepers' membarrier: publish with release (RING-25) */
} shm_ring;

typedef struct shm_ring_producer {
	shm_ring *r;
	uint64_t tok;
	uint32_t slot;
	int flags, attached, corrupt;
	int claimed;          /* a claim is open */
	uint64_t cl_pos;      /* position of the claimed record's header */
	uint64_t cl_start;    /* start of the claim (padding included) */
	uint64_t cl_n;        /* claimed payload bytes */
	uint64_t tail;        /* single producer: T, which this end owns */
	uint64_t head;        /* last H seen */
	uint64_t count;       /* messages committed (statistics) */
	uint64_t bytes;       /* their payload bytes (statistics) */
	int64_t last_check;
	int streak;           /* the last claim found room at once */
} shm_ring_producer;

typedef struct shm_ring_consumer {
	shm_ring *r;
	uint64_t tok;
	int flags, attached, corrupt;
	int reading;          /* a read is pending release */
	uint64_t head;        /* H, which this end owns */
	uint64_t tail;        /* last T seen */
	uint64_t rd_len;      /* payload length of the pending read */
	uint64_t count;       /* messages released (statistics) */
	uint64_t bytes;       /* their payload bytes (statistics) */
	int64_t last_check;
	int streak;           /* the last read found a message at once */
	uint32_t takeovers;   /* takeovers counted as deaths so far (RING-30) */
	uint32_t deaths;      /* deaths found and not yet reported */
	uint64_t death_at;    /* reported once H reaches this T (the latest death's) */
	int saw_death;        /* a producer died since attach: the stream had begun (RING-32) */
} shm_ring_consumer;

static inline int shm_ring_producer_close(shm_ring_producer *p);
static inline int shm_ring_consumer_close(shm_ring_consumer *c);

static inline _Atomic uint64_t *shm__r64(const shm_ring *r, size_t off) {
	return (_Atomic uint64_t *)(void *)(r->base + off);
}
static inline _Atomic uint32_t *shm__r32(const shm_ring *r, size_t off) {
	return (_Atomic uint32_t *)(void *)(r->base + off);
}
static inline _Atomic uint64_t *shm__rslot(const shm_ring *r, uint32_t i, size_t off) {
	return shm__r64(r, SHM__RH + (size_t)SHM__RSLOT * i + off);
}
static inline _Atomic uint64_t *shm__rrec(const shm_ring *r, uint64_t pos) {
	return (_Atomic uint64_t *)(void *)(r->data + (pos & r->mask));
}
static inline uint64_t shm__ralign(uint64_t n) { return (n + 7) & ~7ull; }
static inline uint64_t shm__rword(int32_t len, uint32_t type) {
	return (uint64_t)(uint32_t)len | ((uint64_t)type << 32);
}

/* shm_ring_size returns the bytes a segment needs for a ring of capacity
 * bytes (a power of two, 64 .. 2^30) and producers slots (0 or 1: single
 * producer; at most 1024), or 0 if they are invalid. */
static inline size_t shm_ring_size(uint64_t capacity, uint32_t producers) {
	if (capacity < SHM__RMINCAP || capacity > SHM__RMAXCAP || (capacity & (capacity - 1)) != 0) return 0;
	if (producers > SHM__RMAXSLOTS) return 0;
	uint32_t s = producers <= 1 ? 1 : producers;
	return (size_t)(SHM__RH + (uint64_t)SHM__RSLOT * s + capacity);
}

static inline void shm__ring_bind(shm_ring *r, uint64_t cap, uint64_t m, uint32_t s, int multi) {
	r->base = (unsigned char *)r->seg.addr;
	r->data = r->base + SHM__RH + (size_t)SHM__RSLOT * s;
	r->cap = cap;
	r->mask = cap - 1;
	r->max_msg = m;
	r->nslots = s;
	r->multi = multi;
}

/* Wake fences (SPEC.md RING-25). A sleeper announces itself, then runs
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) before it re-checks: every
 * running thread of every process registered for that command executes a
 * full barrier (membarrier(2), Linux 4.16; kernel/sched/membarrier.c). A
 * registered waker may then publish a position with a release store and
 * load the waiting word with no fence between: the sleeper's barrier
 * stands in for it. One not registered keeps seq-cst stores. The state is
 * per process (a weak symbol, like the token): 0 not asked yet, 1
 * registered, 2 not. */
__attribute__((weak)) _Atomic int shm__xfence_state;

static inline int shm__xfence(void) {
#if defined(__linux__)
	int st = atomic_load_explicit(&shm__xfence_state, memory_order_relaxed);
	if (st == 0) {
		/* MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED (include/uapi/linux/membarrier.h) */
		st = syscall(SYS_membarrier, 1 << 2, 0, 0) == 0 ? 1 : 2;
		atomic_store_explicit(&shm__xfence_state, st, memory_order_relaxed);
	}
	return st == 1;
#else
	return 0; /* no membarrier(2): wakers keep their own fence */
#endif
}

/* The sleeper's barrier (RING-23 step 1): 1 when every registered waker is
 * ordered, 0 when the call failed (then sleep at most 1 ms: a registered
 * waker could go unseen). ENOSYS (no membarrier) and EINVAL (the kernel has
 * no GLOBAL_EXPEDITED) mean no process on this kernel can have registered:
 * nothing to order, no cap. Nothing to do without membarrier(2) at all. */
static inline int shm__sleeper_barrier(void) {
#if defined(__linux__)
	for (;;) {
		/* MEMBARRIER_CMD_GLOBAL_EXPEDITED */
		if (syscall(SYS_membarrier, 1 << 1, 0, 0) == 0) return 1;
		if (errno == ENOSYS || errno == EINVAL) return 1;
		if (errno != EINTR) return 0;
	}
#else
	return 1;
#endif
}

#define SHM__R_BARRIERLESS_NS 1000000LL

/* A publishing store (T, H) that a sleeper on the other side may re-check. */
static inline void shm__ring_publish(const shm_ring *r, _Atomic uint64_t *w, uint64_t v) {
	if (r->xfence) {
		atomic_store_explicit(w, v, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the waiting word's load after it */
	} else {
		atomic_store(w, v);
	}
}

/* shm_ring_create_in writes an empty ring into seg (mapped writable,
 * zero-filled, at least shm_ring_size bytes); step 1. The ring does not own
 * seg: shm_ring_close leaves it mapped. */
static inline int shm_ring_create_in(shm_ring *r, shm_seg *seg, uint64_t capacity, uint64_t max_msg, uint32_t producers) {
	size_t need = shm_ring_size(capacity, producers);
	if (need == 0 || seg == NULL || seg->addr == NULL || seg->readonly) return -EINVAL;
	if (seg->size < need) return -EINVAL;
	if (max_msg == 0) max_msg = capacity - 8;
	if (max_msg > capacity - 8) return -EINVAL;
	memset(r, 0, sizeof *r);
	r->seg = *seg;
	r->xfence = shm__xfence();
	uint32_t s = producers <= 1 ? 1 : producers;
	shm__ring_bind(r, capacity, max_msg, s, producers > 1);
	atomic_store_explicit(shm__r32(r, SHM__O_VERSION), SHM_RING_VERSION, memory_order_relaxed);
	atomic_store_explicit(shm__r32(r, SHM__O_FLAGS), producers > 1 ? 1u : 0u, memory_order_relaxed);
	atomic_store_explicit(shm__r64(r, SHM__O_CAP), capacity, memory_order_relaxed);
	atomic_store_explicit(shm__r64(r, SHM__O_MAXMSG), max_msg, memory_order_relaxed);
	atomic_store_explicit(shm__r32(r, SHM__O_SLOTS), s, memory_order_relaxed);
	atomic_store_explicit(shm__r64(r, SHM__O_DOFF), (uint64_t)SHM__RH + (uint64_t)SHM__RSLOT * s, memory_order_relaxed);
	atomic_store_explicit(shm__r64(r, SHM__O_MAGIC), SHM_RING_MAGIC, memory_order_release);
	return 0;
}

/* shm_ring_open_in checks the ring header in seg (step 1): SHM_ENOTRING for
 * a wrong magic or layout version, SHM_ECORRUPT for geometry that is invalid
 * or does not fit the segment. The ring does not own seg. */
static inline int shm_ring_open_in(shm_ring *r, shm_seg *seg) {
	if (seg == NULL || seg->addr == NULL) return -EINVAL;
	if (seg->size < SHM__RH) return SHM_ENOTRING;
	memset(r, 0, sizeof *r);
	r->seg = *seg;
	r->base = (unsigned char *)seg->addr;
	r->xfence = shm__xfence();
	uint64_t magic = 0;
	for (int i = 0; i < 200; i++) { /* a creator still writing the header */
		magic = atomic_load_explicit(shm__r64(r, SHM__O_MAGIC), memory_order_acquire);
		if (magic != 0) break;
		shm__sleep_ns(1000000);
	}
	if (magic != SHM_RING_MAGIC) return SHM_ENOTRING;
	if (atomic_load_explicit(shm__r32(r, SHM__O_VERSION), memory_order_relaxed) != SHM_RING_VERSION) return SHM_ENOTRING;
	uint32_t flags = atomic_load_explicit(shm__r32(r, SHM__O_FLAGS), memory_order_relaxed);
	uint64_t cap = atomic_load_explicit(shm__r64(r, SHM__O_CAP), memory_order_relaxed);
	uint64_t m = atomic_load_explicit(shm__r64(r, SHM__O_MAXMSG), memory_order_relaxed);
	uint32_t s = atomic_load_explicit(shm__r32(r, SHM__O_SLOTS), memory_order_relaxed);
	uint64_t d = atomic_load_explicit(shm__r64(r, SHM__O_DOFF), memory_order_relaxed);
	if ((flags & ~1u) != 0) return SHM_ECORRUPT;
	if (cap < SHM__RMINCAP || cap > SHM__RMAXCAP || (cap & (cap - 1)) != 0) return SHM_ECORRUPT;
	if (m < 1 || m > cap - 8) return SHM_ECORRUPT;
	if (flags & 1u) {
		if (s < 2 || s > SHM__RMAXSLOTS) return SHM_ECORRUPT;
	} else if (s != 1) {
		return SHM_ECORRUPT;
	}
	if (d != (uint64_t)SHM__RH + (uint64_t)SHM__RSLOT * s) return SHM_ECORRUPT;
	if ((uint64_t)seg->size < d + cap) return SHM_ECORRUPT;
	shm__ring_bind(r, cap, m, s, (flags & 1u) != 0);
	return 0;
}

/* shm_ring_create creates the segment name holding an empty ring: capacity
 * a power of two (64 .. 2^30), max_msg 0 for capacity-8, producers 0 or 1 for
 * a single-producer ring, up to 1024 slots otherwise. -EEXIST if taken. */
static inline int shm_ring_create(shm_ring *r, const char *name, uint64_t capacity, uint64_t max_msg, uint32_t producers, mode_t perm) {
	size_t need = shm_ring_size(capacity, producers);
	if (need == 0 || max_msg > capacity - 8) return -EINVAL;
	shm_seg seg;
	int rc = shm_seg_create(&seg, name, need, perm);
	if (rc < 0) return rc;
	rc = shm_ring_create_in(r, &seg, capacity, max_msg, producers);
	if (rc < 0) {
		shm_seg_close(&seg);
		shm_seg_unlink(name);
		return rc;
	}
	r->own_seg = 1;
	return 0;
}

/* shm_ring_open opens the named ring read-write and validates its header as
 * shm_ring_open_in does. */
static inline int shm_ring_open(shm_ring *r, const char *name) {
	shm_seg seg;
	int rc = shm_seg_open(&seg, name, 0, 0);
	if (rc < 0) return rc;
	rc = shm_ring_open_in(r, &seg);
	if (rc < 0) {
		shm_seg_close(&seg);
		return rc;
	}
	r->own_seg = 1;
	return 0;
}

/* shm_ring_close unmaps the ring if it owns its segment. Close its ends
 * first. */
static inline int shm_ring_close(shm_ring *r) {
	if (r->base == NULL) return -EBADF;
	int rc = r->own_seg ? shm_seg_close(&r->seg) : 0;
	r->base = NULL;
	r->data = NULL;
	return rc;
}

static inline uint64_t shm_ring_capacity(const shm_ring *r) { return r->cap; }
static inline uint64_t shm_ring_max_message(const shm_ring *r) { return r->max_msg; }
static inline int shm_ring_multi_producer(const shm_ring *r) { return r->multi; }

/* Statistics (advisory; bytes layout 2 first reserved). */
typedef struct shm_ring_stats {
	uint64_t tail, head, committed, released, producer_sleeps, consumer_sleeps;
	uint32_t producer_takeovers, reaped, consumer_takeovers, recovered, corruptions, attaches;
	uint64_t consumer_token;
	uint32_t consumer_state;
} shm_ring_stats;

/* shm_ring_stats reads the header's statistics words (never validated: they
 * are advisory). */
static inline void shm_ring_stats_read(const shm_ring *r, shm_ring_stats *st) {
	st->tail = atomic_load(shm__r64(r, SHM__O_TAIL));
	st->head = atomic_load(shm__r64(r, SHM__O_HEAD));
	st->committed = atomic_load(shm__r64(r, SHM__O_COMMITTED));
	st->released = atomic_load(shm__r64(r, SHM__O_RELEASED));
	st->producer_sleeps = atomic_load(shm__r64(r, SHM__O_PSLEEPS));
	st->consumer_sleeps = atomic_load(shm__r64(r, SHM__O_CSLEEPS));
	st->producer_takeovers = atomic_load(shm__r32(r, SHM__O_PTAKEOVERS));
	st->reaped = atomic_load(shm__r32(r, SHM__O_REAPED));
	st->consumer_takeovers = atomic_load(shm__r32(r, SHM__O_CTAKEOVERS));
	st->recovered = atomic_load(shm__r32(r, SHM__O_RECOVERED));
	st->corruptions = atomic_load(shm__r32(r, SHM__O_CORRUPTIONS));
	st->attaches = atomic_load(shm__r32(r, SHM__O_ATTACHES));
	st->consumer_token = atomic_load(shm__r64(r, SHM__O_CTOK));
	st->consumer_state = atomic_load(shm__r32(r, SHM__O_CSTATE));
}

/* step 11, waker side: after a publishing store, wake the other side if
 * its waiting word says it sleeps, counting the wake in the word 8 bytes on
 * (consumer_waiting 192 → 200, producer_waiting 256 → 264). The load is
 * seq-cst: a plain MOV on x86, and on arm64 an LDAR, which an earlier STLR
 * does not pass. */
static inline void shm__ring_wake(_Atomic uint32_t *w) {
	if (atomic_load(w) != 0 && atomic_exchange(w, 0) != 0) {
		atomic_fetch_add_explicit((_Atomic uint64_t *)(void *)((unsigned char *)w + 8), 1, memory_order_relaxed);
		shm_wake(w, INT_MAX);
	}
}

static inline int shm__ring_seg_shrunk(const shm_ring *r) {
	if (!r->own_seg) return 0;
	struct stat st;
	if (fstat(r->seg.fd, &st) != 0) return 0;
	return (uint64_t)st.st_size < (uint64_t)r->seg.size;
}

/* a position pair read from shared memory is sane: 8-aligned, head <= tail <=
 * head + capacity. */
static inline int shm__ring_sane(const shm_ring *r, uint64_t h, uint64_t t) {
	return (h & 7) == 0 && (t & 7) == 0 && t >= h && t - h <= r->cap;
}

static inline int shm__pcorrupt(shm_ring_producer *p) {
	if (!p->corrupt) {
		p->corrupt = 1;
		atomic_fetch_add(shm__r32(p->r, SHM__O_CORRUPTIONS), 1);
	}
	return SHM_ECORRUPT;
}
static inline int shm__ccorrupt(shm_ring_consumer *c) {
	if (!c->corrupt) {
		c->corrupt = 1;
		atomic_fetch_add(shm__r32(c->r, SHM__O_CORRUPTIONS), 1);
	}
	return SHM_ECORRUPT;
}

/* ---- producer ---- */

/* shm_ring_producer_attach attaches this process as a producer (step 4):
 * -EBUSY when every slot is held by a live process. flags: SHM_RING_POLLING. */
static inline int shm_ring_producer_attach(shm_ring *r, shm_ring_producer *p, int flags) {
	if (r->base == NULL || r->seg.readonly) return -EBADF;
	memset(p, 0, sizeof *p);
	p->r = r;
	p->flags = flags;
	p->tok = shm_token();
	if (!shm_valid_token(p->tok)) return -EINVAL;
	atomic_store(shm__r32(r, SHM__O_PBEGUN), 1);
	int got = 0, takeover = 0;
	for (int round = 0; round < 64 && !got; round++) {
		int contended = 0;
		for (uint32_t i = 0; i < r->nslots && !got; i++) {
			_Atomic uint64_t *tw = shm__rslot(r, i, SHM__S_TOK);
			uint64_t t = atomic_load(tw);
			if (t == 0) {
				uint64_t z = 0;
				if (atomic_compare_exchange_strong(tw, &z, p->tok)) { got = 1; p->slot = i; }
				else contended = 1;
			} else if (t != p->tok && atomic_load(shm__rslot(r, i, SHM__S_CEND)) == 0 && !shm_peer_alive(&r->seg, t)) {
				if (atomic_compare_exchange_strong(tw, &t, p->tok)) { got = 1; takeover = 1; p->slot = i; }
				else contended = 1;
			}
		}
		if (!contended) break;
	}
	if (!got) return -EBUSY;
	/* Statistics (RING-33): count on from what the last producer of the slot
	 * (multi-producer) or of the ring left. */
	p->count = atomic_load_explicit(r->multi ? shm__rslot(r, p->slot, SHM__S_COUNT) : shm__r64(r, SHM__O_COMMITTED),
	                                memory_order_relaxed);
	p->bytes = atomic_load_explicit(r->multi ? shm__rslot(r, p->slot, SHM__S_BYTES) : shm__r64(r, SHM__O_CBYTES),
	                                memory_order_relaxed);
	shm__ring_wake(shm__r32(r, SHM__O_CWAIT));
	if (takeover) atomic_fetch_add(shm__r32(r, SHM__O_PTAKEOVERS), 1);
	atomic_store(shm__rslot(r, p->slot, SHM__S_PID), (uint64_t)getpid());
	atomic_fetch_add(shm__r32(r, SHM__O_ATTACHES), 1);
	uint64_t h = atomic_load(shm__r64(r, SHM__O_HEAD));
	uint64_t t = atomic_load(shm__r64(r, SHM__O_TAIL));
	p->attached = 1;
	p->last_check = shm__now_ns();
	if (!shm__ring_sane(r, h, t)) {
		shm__pcorrupt(p);
		shm_ring_producer_close(p);
		return SHM_ECORRUPT;
	}
	p->head = h;
	p->tail = t;
	return 0;
}

/* shm_ring_producer_close detaches (step 5); an open claim becomes padding. */
static inline int shm_ring_producer_close(shm_ring_producer *p) {
	if (!p->attached) return -EBADF;
	shm_ring *r = p->r;
	p->attached = 0;
	if (r->base == NULL) return -EBADF;
	if (p->claimed && r->multi) {
		uint64_t len = shm__ralign(8 + p->cl_n);
		atomic_store(shm__rrec(r, p->cl_pos), shm__rword((int32_t)len, SHM__R_PAD));
		shm__ring_wake(shm__r32(r, SHM__O_CWAIT));
	}
	p->claimed = 0;
	atomic_store(shm__rslot(r, p->slot, SHM__S_CEND), 0);
	atomic_store(shm__rslot(r, p->slot, SHM__S_PID), 0);
	uint64_t own = p->tok;
	atomic_compare_exchange_strong(shm__rslot(r, p->slot, SHM__S_TOK), &own, 0);
	atomic_store(shm__r32(r, SHM__O_CWAIT), 0);
	shm_wake(shm__r32(r, SHM__O_CWAIT), INT_MAX);
	return 0;
}

/* the consumer, as a producer sees it: 0, SHM_EPEERCLOSED or SHM_EPEERDEAD
 * (the liveness look only when look is set). */
static inline int shm__ring_consumer_gone(shm_ring_producer *p, int look) {
	shm_ring *r = p->r;
	if (atomic_load_explicit(shm__r32(r, SHM__O_CSTATE), memory_order_relaxed) == 2) return SHM_EPEERCLOSED;
	if (!look) return 0;
	if (shm__ring_seg_shrunk(r)) return shm__pcorrupt(p);
	uint64_t t = atomic_load(shm__r64(r, SHM__O_CTOK));
	if (t != 0 && !shm_peer_alive(&r->seg, t)) {
		if (atomic_load(shm__r64(r, SHM__O_CTOK)) == t) return SHM_EPEERDEAD;
	}
	return 0;
}

/* One attempt to claim n payload bytes: 0 with the claim open, -EAGAIN for no
 * room, or an error. */
static inline int shm__ring_try_claim(shm_ring_producer *p, uint64_t n) {
	shm_ring *r = p->r;
	uint64_t rec = shm__ralign(8 + n);
	if (!r->multi) { /* step 6 */
		uint64_t t = p->tail;
		for (int k = 0; k < 2; k++) {
			uint64_t idx = t & r->mask, pad = rec > r->cap - idx ? r->cap - idx : 0;
			if (r->cap - (t - p->head) < pad + rec) {
				uint64_t h = atomic_load_explicit(shm__r64(r, SHM__O_HEAD), memory_order_acquire);
				if (!shm__ring_sane(r, h, t) || h < p->head) return shm__pcorrupt(p);
				p->head = h;
			}
			uint64_t room = r->cap - (t - p->head);
			if (room >= pad + rec) {
				if (pad) atomic_store_explicit(shm__rrec(r, t), shm__rword((int32_t)pad, SHM__R_PAD), memory_order_relaxed);
				p->claimed = 1;
				p->cl_start = t;
				p->cl_pos = t + pad;
				p->cl_n = n;
				return 0;
			}
			if (pad && room >= pad) { /* only the padding fits: publish it alone */
				atomic_store_explicit(shm__rrec(r, t), shm__rword((int32_t)pad, SHM__R_PAD), memory_order_relaxed);
				t += pad;
				p->tail = t;
				shm__ring_publish(r, shm__r64(r, SHM__O_TAIL), t);
				shm__ring_wake(shm__r32(r, SHM__O_CWAIT));
				continue;
			}
			return -EAGAIN;
		}
		return -EAGAIN;
	}
	/* step 7 */
	_Atomic uint64_t *tw = shm__r64(r, SHM__O_TAIL);
	_Atomic uint64_t *cs = shm__rslot(r, p->slot, SHM__S_CSTART);
	_Atomic uint64_t *ce = shm__rslot(r, p->slot, SHM__S_CEND);
	for (int tries = 0; tries < 64; tries++) {
		uint64_t t = atomic_load(tw);
		uint64_t h = p->head;
		if ((t & 7) != 0 || t < h) return shm__pcorrupt(p);
		uint64_t idx = t & r->mask, pad = rec > r->cap - idx ? r->cap - idx : 0;
		if (t - h > r->cap || r->cap - (t - h) < pad + rec) {
			int ok = 0;
			for (int j = 0; j < 100; j++) {
				uint64_t t1 = atomic_load(tw);
				h = atomic_load(shm__r64(r, SHM__O_HEAD));
				uint64_t t2 = atomic_load(tw);
				if (t1 == t2) { t = t1; ok = 1; break; }
			}
			if (!ok) return -EAGAIN;
			if (!shm__ring_sane(r, h, t)) return shm__pcorrupt(p);
			p->head = h;
			idx = t & r->mask;
			pad = rec > r->cap - idx ? r->cap - idx : 0;
		}
		uint64_t room = r->cap - (t - h);
		uint64_t e;
		int padonly = 0;
		if (room >= pad + rec) e = t + pad + rec;
		else if (pad && room >= pad) { e = t + pad; padonly = 1; }
		else return -EAGAIN;
		/* The announcement (release, step 7.3) is ordered before the CAS,
		 * which publishes it with T. */
		atomic_store_explicit(cs, t, memory_order_release);
		atomic_store_explicit(ce, e, memory_order_release);
		uint64_t exp = t;
		if (!atomic_compare_exchange_strong(tw, &exp, e)) {
			atomic_store_explicit(ce, 0, memory_order_release);
			continue;
		}
		if (pad) atomic_store(shm__rrec(r, t), shm__rword((int32_t)pad, SHM__R_PAD));
		if (padonly) {
			atomic_store_explicit(ce, 0, memory_order_release);
			shm__ring_wake(shm__r32(r, SHM__O_CWAIT));
			continue; /* the padding is published; try again at offset 0 */
		}
		/* Not a publishing store: nobody waits for a claimed header. It
		 * stays before the payload in program order (a compiler barrier),
		 * which is all a recoverer relies on: a dead process's stores are
		 * all visible (RING-29). */
		atomic_store_explicit(shm__rrec(r, t + pad), shm__rword(-(int32_t)(8 + n), SHM__R_DATA), memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
		p->claimed = 1;
		p->cl_start = t;
		p->cl_pos = t + pad;
		p->cl_n = n;
		return 0;
	}
	return -EAGAIN;
}

/* Blocking frame shared by both ends: spin, yield, then sleep on word. The
 * ends look at their peers every SHM__R_CHECK_NS, timed by their own
 * last_check, which outlives one call. */
typedef struct shm__rwait {
	int64_t end;
	int spins;
} shm__rwait;

static inline void shm__rwait_init(shm__rwait *w, int64_t timeout_ns) {
	int64_t now = shm__now_ns();
	w->end = timeout_ns < 0 ? INT64_MAX : now + timeout_ns;
	w->spins = 0;
}

static inline void shm__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* shm__ring_hold is the first pause of an end that was keeping up (its
 * previous call found what it needed at once) and now finds nothing: it
 * leaves the ring's shared lines alone for SHM__R_HOLD_NS before it looks
 * again. Looking at once would take the tail's (or head's) line and the
 * record's back from the peer after each message, and the peer's publishing
 * store, seq-cst (RING-25), then waits for that line every time; after a
 * hold the peer has published a run of messages into lines it owns, and
 * this end takes them in one go. An end that had to wait on its last call
 * (a request and its answer) looks at once: no latency is added there. */
static inline void shm__ring_hold(int64_t timeout_ns) {
	int64_t d = timeout_ns >= 0 && timeout_ns < SHM__R_HOLD_NS ? timeout_ns : SHM__R_HOLD_NS;
	int64_t t0 = shm__now_ns();
	do shm__cpu_relax();
	while (shm__now_ns() - t0 < d);
}

/* The claim of shm__ring_claim past its common case: padding, a fresh H,
 * waiting, errors. Kept out of line so that the common case stays small. */
static __attribute__((noinline, unused)) int shm__ring_claim_slow(shm_ring_producer *p, size_t n, int64_t timeout_ns) {
	shm_ring *r = p->r;
	int rc = shm__ring_consumer_gone(p, 0);
	if (rc < 0) return rc;
	rc = shm__ring_try_claim(p, n);
	int streak = p->streak;
	p->streak = rc == 0;
	if (rc != -EAGAIN) return rc;
	if (timeout_ns == 0) {
		int64_t now = shm__now_ns();
		if (now - p->last_check >= SHM__R_CHECK_NS) {
			p->last_check = now;
			rc = shm__ring_consumer_gone(p, 1);
			if (rc < 0) return rc;
		}
		return -EAGAIN;
	}
	atomic_fetch_add_explicit(shm__r64(r, SHM__O_FULLWAITS), 1, memory_order_relaxed);
	shm__rwait w;
	shm__rwait_init(&w, timeout_ns);
	_Atomic uint32_t *pw = shm__r32(r, SHM__O_PWAIT);
	if (streak) shm__ring_hold(timeout_ns);
	for (;;) {
		int64_t now = 0;
		if (w.spins < SHM__R_SPINS) {
			w.spins++;
			shm__cpu_relax();
			if ((w.spins & 63) == 0) now = shm__now_ns();
		} else if (w.spins < SHM__R_SPINS + SHM__R_YIELDS || (p->flags & SHM_RING_POLLING)) {
			w.spins++;
			sched_yield();
			now = shm__now_ns();
		} else {
			atomic_store(pw, 1);
			atomic_thread_fence(memory_order_seq_cst); /* step 11: Dekker with the H store */
			int fenced = shm__sleeper_barrier();      /* RING-25: for wakers that publish with release */
			rc = shm__ring_try_claim(p, n);
			if (rc != -EAGAIN) return rc;
			/* RING-23's re-check includes consumer_state: a close stores it
			 * before its store 0 in producer_waiting, which may precede our
			 * store 1; then only this load sees the close. */
			rc = shm__ring_consumer_gone(p, 0);
			if (rc < 0) return rc;
			now = shm__now_ns();
			int64_t left = w.end - now, d = fenced ? SHM__R_SLEEP_NS : SHM__R_BARRIERLESS_NS;
			if (left < d) d = left;
			if (d > 0) {
				atomic_fetch_add(shm__r64(r, SHM__O_PSLEEPS), 1);
				shm_wait(pw, 1, d);
			}
			now = shm__now_ns();
		}
		rc = shm__ring_try_claim(p, n);
		if (rc != -EAGAIN) return rc;
		rc = shm__ring_consumer_gone(p, 0);
		if (rc < 0) return rc;
		if (now) {
			if (now - p->last_check >= SHM__R_CHECK_NS) { /* timed by the end: see shm__ring_next */
				p->last_check = now;
				rc = shm__ring_consumer_gone(p, 1);
				if (rc < 0) return rc;
			}
			if (now >= w.end) return -ETIMEDOUT;
		}
	}
}

static inline int shm__ring_claim(shm_ring_producer *p, size_t n, int64_t timeout_ns) {
	shm_ring *r = p->r;
	if (!p->attached || r->base == NULL) return -EBADF;
	if (p->corrupt) return SHM_ECORRUPT;
	if (p->claimed) return -EINVAL;
	if (n > r->max_msg) return SHM_ETOOLARGE;
	if (!r->multi) {
		/* step 6's common case: the consumer attached or not yet, and the
		 * record fits before the end, in the room the cached H shows. */
		uint64_t t = p->tail, rec = shm__ralign(8 + n);
		if (rec <= r->cap - (t & r->mask) && rec <= r->cap - (t - p->head) &&
		    atomic_load_explicit(shm__r32(r, SHM__O_CSTATE), memory_order_relaxed) != 2) {
			p->claimed = 1;
			p->cl_start = t;
			p->cl_pos = t;
			p->cl_n = n;
			p->streak = 1;
			return 0;
		}
	}
	return shm__ring_claim_slow(p, n, timeout_ns);
}

/* shm_ring_claim reserves n bytes for a message and points *buf at them, in
 * the ring (zero-copy); shm_ring_commit publishes them. Blocks while the ring
 * is full (timeout_ns as everywhere). SHM_ETOOLARGE beyond the maximum,
 * SHM_EPEERCLOSED once the consumer closed, SHM_EPEERDEAD if it died. */
static inline int shm_ring_claim(shm_ring_producer *p, size_t n, void **buf, int64_t timeout_ns) {
	int rc = shm__ring_claim(p, n, timeout_ns);
	if (rc < 0) return rc;
	*buf = p->r->data + ((p->cl_pos + 8) & p->r->mask);
	return 0;
}

/* shm_ring_commit publishes the first n bytes (n <= the claimed size) of the
 * open claim (steps 6 and 8). */
static inline int shm_ring_commit(shm_ring_producer *p, size_t n) {
	shm_ring *r = p->r;
	if (!p->attached || r->base == NULL) return -EBADF;
	if (!p->claimed) return -EINVAL;
	if (n > p->cl_n) return -EINVAL;
	uint64_t rec = shm__ralign(8 + n), full = shm__ralign(8 + p->cl_n);
	if (!r->multi) {
		atomic_store_explicit(shm__rrec(r, p->cl_pos), shm__rword((int32_t)(8 + n), SHM__R_DATA), memory_order_relaxed);
		p->tail = p->cl_pos + rec;
		p->claimed = 0;
		shm__ring_publish(r, shm__r64(r, SHM__O_TAIL), p->tail);
		atomic_store_explicit(shm__r64(r, SHM__O_COMMITTED), ++p->count, memory_order_relaxed);
		atomic_store_explicit(shm__r64(r, SHM__O_CBYTES), p->bytes += n, memory_order_relaxed);
	} else {
		/* The commit header is the publishing store (seq-cst: RING-25);
		 * the padding after it and claim_end need only be ordered with it. */
		if (rec < full) /* the rest of the claimed extent becomes padding */
			atomic_store_explicit(shm__rrec(r, p->cl_pos + rec), shm__rword((int32_t)(full - rec), SHM__R_PAD), memory_order_relaxed);
		atomic_store(shm__rrec(r, p->cl_pos), shm__rword((int32_t)(8 + n), SHM__R_DATA));
		p->claimed = 0;
		atomic_store_explicit(shm__rslot(r, p->slot, SHM__S_CEND), 0, memory_order_release);
		atomic_store_explicit(shm__rslot(r, p->slot, SHM__S_COUNT), ++p->count, memory_order_relaxed);
		atomic_store_explicit(shm__rslot(r, p->slot, SHM__S_BYTES), p->bytes += n, memory_order_relaxed);
	}
	shm__ring_wake(shm__r32(r, SHM__O_CWAIT));
	return 0;
}

/* shm_ring_send copies msg into the ring as one message; see shm_ring_claim. */
static inline int shm_ring_send(shm_ring_producer *p, const void *msg, size_t n, int64_t timeout_ns) {
	void *buf;
	int rc = shm_ring_claim(p, n, &buf, timeout_ns);
	if (rc < 0) return rc;
	if (n) memcpy(buf, msg, n);
	return shm_ring_commit(p, n);
}

/* ---- consumer ---- */

/* Slot claims, read consistently (claim end, start, end again). */
static inline int shm__ring_claim_of(const shm_ring *r, uint32_t i, uint64_t *start, uint64_t *end) {
	for (int k = 0; k < 100; k++) {
		uint64_t e1 = atomic_load(shm__rslot(r, i, SHM__S_CEND));
		uint64_t s = atomic_load(shm__rslot(r, i, SHM__S_CSTART));
		uint64_t e2 = atomic_load(shm__rslot(r, i, SHM__S_CEND));
		if (e1 == e2) { *start = s; *end = e1; return 0; }
	}
	return -EAGAIN;
}

/* Step 12, dead-claim recovery, at H with a header <= 0 and H < T: 1 if the
 * header at H was changed (look again), 0 to keep waiting, or an error. */
static inline int shm__ring_recover(shm_ring_consumer *c) {
	shm_ring *r = c->r;
	uint64_t h = c->head;
	uint64_t t = atomic_load(shm__r64(r, SHM__O_TAIL));
	if (!shm__ring_sane(r, h, t)) return shm__ccorrupt(c);
	if (t == h) return 0;
	int covered = 0;
	uint64_t min_end = UINT64_MAX, next_claim = UINT64_MAX;
	for (uint32_t i = 0; i < r->nslots; i++) {
		uint64_t s, e;
		if (shm__ring_claim_of(r, i, &s, &e) < 0) return 0; /* moving: a live producer */
		if (e == 0) continue;
		if (s <= h && h < e) {
			uint64_t tok = atomic_load(shm__rslot(r, i, SHM__S_TOK));
			if (tok != 0 && shm_peer_alive(&r->seg, tok)) return 0;
			covered = 1;
			if (e < min_end) min_end = e;
		} else if (s > h && s < next_claim) {
			next_claim = s;
		}
	}
	_Atomic uint64_t *hw = shm__rrec(r, h);
	uint64_t w = atomic_load(hw);
	int32_t len = (int32_t)(uint32_t)w;
	uint64_t area_end = h + (r->cap - (h & r->mask));
	uint64_t limit = t < area_end ? t : area_end;
	uint64_t pad;
	if (!covered) {
		if (w == 0) { /* a consumer died after its header-0 store */
			uint64_t stop = limit < next_claim ? limit : next_claim;
			uint64_t q = h + 8;
			while (q < stop && atomic_load(shm__rrec(r, q)) == 0) q += 8;
			pad = q - h;
		} else if (len < 0) {
			return shm__ccorrupt(c);
		} else {
			return 1; /* committed meanwhile */
		}
	} else if (len > 0) {
		return 1;
	} else if (len < 0) { /* validated as in step 9 */
		uint64_t l = (uint64_t)(-(int64_t)len), a = shm__ralign(l);
		if (l < 8 || l - 8 > r->max_msg || a > t - h || (h & r->mask) + a > r->cap) return shm__ccorrupt(c);
		pad = a;
	} else {
		uint64_t e = min_end < limit ? min_end : limit;
		if (e <= h) return shm__ccorrupt(c);
		pad = (e - h) & ~7ull;
	}
	if (pad < 8 || pad > 0x7fffffff) return shm__ccorrupt(c);
	if (atomic_compare_exchange_strong(hw, &w, shm__rword((int32_t)pad, SHM__R_PAD)))
		atomic_fetch_add(shm__r32(r, SHM__O_RECOVERED), 1);
	return 1;
}

/* One death found (a reaped slot or a takeover): reported once H reaches a
 * T loaded now, after everything the dead producer committed (RING-30). One
 * position for all pending deaths, the latest: each is still reported after
 * its own T. */
static inline void shm__ring_death(shm_ring_consumer *c) {
	c->saw_death = 1;
	uint64_t t = atomic_load(shm__r64(c->r, SHM__O_TAIL));
	if (c->deaths == 0 || t > c->death_at) c->death_at = t;
	c->deaths++;
}

/* Step 13: free the slots of dead producers, each a death to report
 * (shm__ring_death); 0. */
static inline int shm__ring_reap(shm_ring_consumer *c) {
	shm_ring *r = c->r;
	for (uint32_t i = 0; i < r->nslots; i++) {
		_Atomic uint64_t *tw = shm__rslot(r, i, SHM__S_TOK);
		uint64_t tok = atomic_load(tw);
		if (tok == 0 || shm_peer_alive(&r->seg, tok)) continue;
		/* T after the liveness check: a producer whose CAS moved T after an
		 * earlier load and that died since has its claim_start at or past
		 * that T, and its claim would be freed uncovered. */
		uint64_t t = atomic_load(shm__r64(r, SHM__O_TAIL));
		uint64_t s, e;
		if (shm__ring_claim_of(r, i, &s, &e) < 0) continue;
		if (e != 0 && s < t && c->head < e) continue; /* recovery has not passed it yet */
		if (e != 0) {
			uint64_t ee = e;
			if (!atomic_compare_exchange_strong(shm__rslot(r, i, SHM__S_CEND), &ee, 0)) continue;
		}
		if (atomic_load(tw) == tok) {
			uint64_t pid = atomic_load(shm__rslot(r, i, SHM__S_PID));
			atomic_compare_exchange_strong(shm__rslot(r, i, SHM__S_PID), &pid, 0);
		}
		if (atomic_compare_exchange_strong(tw, &tok, 0)) {
			atomic_fetch_add(shm__r32(r, SHM__O_REAPED), 1);
			shm__ring_death(c);
		}
	}
	return 0;
}

/* Step 14: 1 when every producer is gone and the ring is drained. */
static inline int shm__ring_eof(shm_ring_consumer *c) {
	shm_ring *r = c->r;
	if (atomic_load(shm__r32(r, SHM__O_PBEGUN)) != 1) return 0;
	uint32_t a1 = atomic_load(shm__r32(r, SHM__O_ATTACHES));
	/* the first producer may be between producers_ever and its token CAS,
	 * unless one died after taking its slot and before counting itself (RING-32) */
	if (a1 == 0 && !c->saw_death) return 0;
	for (uint32_t i = 0; i < r->nslots; i++)
		if (atomic_load(shm__rslot(r, i, SHM__S_TOK)) != 0) return 0;
	if (atomic_load(shm__r32(r, SHM__O_ATTACHES)) != a1) return 0;
	return atomic_load(shm__r64(r, SHM__O_TAIL)) == c->head;
}

/* shm_ring_consumer_attach attaches this process as the consumer (step 2):
 * -EBUSY if a live process holds it; a dead consumer's end is taken over,
 * resuming at its position. flags: SHM_RING_POLLING. */
static inline int shm_ring_consumer_attach(shm_ring *r, shm_ring_consumer *c, int flags) {
	if (r->base == NULL || r->seg.readonly) return -EBADF;
	memset(c, 0, sizeof *c);
	c->r = r;
	c->flags = flags;
	c->tok = shm_token();
	if (!shm_valid_token(c->tok)) return -EINVAL;
	_Atomic uint64_t *tw = shm__r64(r, SHM__O_CTOK);
	int got = 0;
	for (int k = 0; k < 64 && !got; k++) {
		uint64_t t = atomic_load(tw);
		if (t == 0) {
			if (atomic_compare_exchange_strong(tw, &t, c->tok)) got = 1;
		} else if (t == c->tok || shm_peer_alive(&r->seg, t)) {
			return -EBUSY;
		} else if (atomic_compare_exchange_strong(tw, &t, c->tok)) {
			atomic_fetch_add(shm__r32(r, SHM__O_CTAKEOVERS), 1);
			got = 1;
		}
	}
	if (!got) return -EBUSY;
	atomic_store(shm__r64(r, SHM__O_CPID), (uint64_t)getpid());
	atomic_store(shm__r32(r, SHM__O_CSTATE), 1);
	c->takeovers = atomic_load(shm__r32(r, SHM__O_PTAKEOVERS)); /* RING-30's baseline */
	c->count = atomic_load_explicit(shm__r64(r, SHM__O_RELEASED), memory_order_relaxed); /* RING-33: count on */
	c->bytes = atomic_load_explicit(shm__r64(r, SHM__O_RBYTES), memory_order_relaxed);
	c->attached = 1;
	c->last_check = shm__now_ns();
	uint64_t h = atomic_load(shm__r64(r, SHM__O_HEAD));
	uint64_t t = atomic_load(shm__r64(r, SHM__O_TAIL));
	int rc = 0;
	if (!shm__ring_sane(r, h, t)) rc = shm__ccorrupt(c);
	c->head = h;
	c->tail = t;
	if (rc == 0 && r->multi && h < t) {
		int32_t len = (int32_t)(uint32_t)atomic_load(shm__rrec(r, h));
		if (len <= 0) rc = shm__ring_recover(c);
	}
	if (rc < 0) {
		shm_ring_consumer_close(c);
		return rc;
	}
	shm__ring_wake(shm__r32(r, SHM__O_PWAIT));
	return 0;
}

/* shm_ring_consumer_close detaches (step 3); a message read and not released
 * stays in the ring for the next consumer. Producers then get
 * SHM_EPEERCLOSED. */
static inline int shm_ring_consumer_close(shm_ring_consumer *c) {
	if (!c->attached) return -EBADF;
	shm_ring *r = c->r;
	c->attached = 0;
	c->reading = 0;
	if (r->base == NULL) return -EBADF;
	atomic_store(shm__r32(r, SHM__O_CSTATE), 2);
	atomic_store(shm__r64(r, SHM__O_CPID), 0);
	uint64_t own = c->tok;
	atomic_compare_exchange_strong(shm__r64(r, SHM__O_CTOK), &own, 0);
	atomic_store(shm__r32(r, SHM__O_PWAIT), 0);
	shm_wake(shm__r32(r, SHM__O_PWAIT), INT_MAX);
	return 0;
}

/* Release the record at H of aligned length a (step 10): a message of n
 * payload bytes if data is set, else padding. */
static inline void shm__ring_advance(shm_ring_consumer *c, uint64_t a, int data, uint64_t n) {
	shm_ring *r = c->r;
	if (r->multi) {
		/* The H store below (seq-cst) orders these before it; the padding
		 * stays before the zeroing in program order (a compiler barrier),
		 * which is what a successor of a consumer killed here sees. */
		_Atomic uint64_t *hw = shm__rrec(r, c->head);
		if (data) atomic_store_explicit(hw, shm__rword((int32_t)a, SHM__R_PAD), memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
		memset(r->data + ((c->head + 8) & r->mask), 0, a - 8);
		atomic_store_explicit(hw, 0, memory_order_release);
	}
	c->head += a;
	shm__ring_publish(r, shm__r64(r, SHM__O_HEAD), c->head);
	if (data) {
		atomic_store_explicit(shm__r64(r, SHM__O_RELEASED), ++c->count, memory_order_relaxed);
		atomic_store_explicit(shm__r64(r, SHM__O_RBYTES), c->bytes += n, memory_order_relaxed);
	}
	shm__ring_wake(shm__r32(r, SHM__O_PWAIT));
}

/* One look (step 9): 0 with a message at H (*len its payload length),
 * -EAGAIN for none, 1 when stuck on an uncommitted record, or an error. */
static inline int shm__ring_poll(shm_ring_consumer *c, uint64_t *len) {
	shm_ring *r = c->r;
	for (int skips = 0; skips <= 64; skips++) {
		uint64_t h = c->head, t = c->tail;
		if (t == h) {
			t = atomic_load_explicit(shm__r64(r, SHM__O_TAIL), memory_order_acquire);
			if (!shm__ring_sane(r, h, t)) return shm__ccorrupt(c);
			c->tail = t;
			if (t == h) return -EAGAIN;
		}
		uint64_t w = atomic_load_explicit(shm__rrec(r, h), memory_order_acquire);
		int32_t l = (int32_t)(uint32_t)w;
		uint32_t type = (uint32_t)(w >> 32);
		if (l <= 0) {
			if (!r->multi) return shm__ccorrupt(c);
			return 1;
		}
		uint64_t a = shm__ralign((uint64_t)l);
		if (l < 8 || a > t - h || (h & r->mask) + a > r->cap) {
			/* T may have moved on since it was cached: look again once. */
			uint64_t t2 = atomic_load_explicit(shm__r64(r, SHM__O_TAIL), memory_order_acquire);
			if (!shm__ring_sane(r, h, t2)) return shm__ccorrupt(c);
			c->tail = t2;
			if (l < 8 || a > t2 - h || (h & r->mask) + a > r->cap) return shm__ccorrupt(c);
		}
		if (type == SHM__R_PAD) {
			shm__ring_advance(c, a, 0, 0);
			continue;
		}
		if (type != SHM__R_DATA || (uint64_t)l - 8 > r->max_msg) return shm__ccorrupt(c);
		*len = (uint64_t)l - 8;
		return 0;
	}
	return -EAGAIN;
}

/* What a consumer that found nothing does on a look at its peers: step 12
 * when stuck, step 13, step 14. 0 to go on waiting. */
static inline int shm__ring_consumer_look(shm_ring_consumer *c, int stuck, int full) {
	if (full) {
		if (shm__ring_seg_shrunk(c->r)) return shm__ccorrupt(c);
		if (stuck) {
			int rc = shm__ring_recover(c);
			if (rc != 0) return rc;
		}
		int rc = shm__ring_reap(c);
		if (rc < 0) return rc;
	}
	/* A producer whose slot a newcomer took before we reaped it is a death
	 * too: each takeover since attach (RING-30). */
	uint32_t tk = atomic_load(shm__r32(c->r, SHM__O_PTAKEOVERS));
	for (; c->takeovers != tk && c->deaths < SHM__RMAXSLOTS; c->takeovers++) shm__ring_death(c);
	/* Reports come one per call, once H has passed the T of their finding,
	 * and before the end of the stream. */
	if (c->deaths > 0 && c->head >= c->death_at) {
		c->deaths--;
		return SHM_EPEERDEAD;
	}
	if (!stuck && c->deaths == 0 && shm__ring_eof(c)) return SHM_EOF;
	return 0;
}

/* The read of shm__ring_next past its common case: padding, validation
 * errors, waiting, peers. Kept out of line so that the common case stays
 * small. */
static __attribute__((noinline, unused)) int shm__ring_next_slow(shm_ring_consumer *c, uint64_t *len, int64_t timeout_ns) {
	shm_ring *r = c->r;
	int rc = shm__ring_poll(c, len);
	int streak = c->streak;
	c->streak = rc == 0;
	if (rc <= 0 && rc != -EAGAIN) return rc;
	if (timeout_ns == 0) {
		int64_t now = shm__now_ns();
		int full = now - c->last_check >= SHM__R_CHECK_NS;
		if (full) c->last_check = now;
		int lr = shm__ring_consumer_look(c, rc == 1, full);
		if (lr == 1) return shm__ring_poll(c, len) == 0 ? 0 : -EAGAIN;
		return lr < 0 ? lr : -EAGAIN;
	}
	atomic_fetch_add_explicit(shm__r64(r, SHM__O_EMPTYWAITS), 1, memory_order_relaxed);
	shm__rwait w;
	shm__rwait_init(&w, timeout_ns);
	_Atomic uint32_t *cw = shm__r32(r, SHM__O_CWAIT);
	if (streak) shm__ring_hold(timeout_ns);
	for (;;) {
		int64_t now = 0;
		int stuck = rc == 1;
		if (w.spins < SHM__R_SPINS) {
			w.spins++;
			shm__cpu_relax();
			if ((w.spins & 63) == 0) now = shm__now_ns();
		} else if (w.spins < SHM__R_SPINS + SHM__R_YIELDS || (c->flags & SHM_RING_POLLING)) {
			w.spins++;
			sched_yield();
			now = shm__now_ns();
		} else {
			int lr = shm__ring_consumer_look(c, stuck, 0);
			if (lr < 0) return lr;
			atomic_store(cw, 1);
			atomic_thread_fence(memory_order_seq_cst); /* step 11: Dekker with the T/header store */
			int fenced = shm__sleeper_barrier();      /* RING-25: for wakers that publish with release */
			rc = shm__ring_poll(c, len);
			if (rc <= 0 && rc != -EAGAIN) return rc; /* the word stays 1 (RING-23) */
			/* The last producer's close frees its slot before its store 0 in
			 * consumer_waiting, which may precede our store 1; then only this
			 * look at the slots sees the end of the stream. */
			if (rc == -EAGAIN && c->deaths == 0 && shm__ring_eof(c)) return SHM_EOF;
			now = shm__now_ns();
			int64_t left = w.end - now, d = fenced ? SHM__R_SLEEP_NS : SHM__R_BARRIERLESS_NS;
			if (left < d) d = left;
			if (d > 0) {
				atomic_fetch_add(shm__r64(r, SHM__O_CSLEEPS), 1);
				shm_wait(cw, 1, d);
			}
			now = shm__now_ns();
		}
		rc = shm__ring_poll(c, len);
		if (rc <= 0 && rc != -EAGAIN) return rc;
		if (now) {
			/* The look at peers is timed by the end, not by this call: a
			 * caller that blocks in slices shorter than SHM__R_CHECK_NS (the
			 * Python binding waits 50 ms at a time, to check for signals)
			 * must still see a dead producer. */
			int full = now - c->last_check >= SHM__R_CHECK_NS;
			if (full) c->last_check = now;
			if (full || w.spins >= SHM__R_SPINS) {
				int lr = shm__ring_consumer_look(c, rc == 1, full);
				if (lr < 0) return lr;
				if (lr == 1) { rc = shm__ring_poll(c, len); if (rc <= 0 && rc != -EAGAIN) return rc; }
			}
			if (now >= w.end) return -ETIMEDOUT;
		}
	}
}

static inline int shm__ring_next(shm_ring_consumer *c, uint64_t *len, int64_t timeout_ns) {
	shm_ring *r = c->r;
	if (!c->attached || r->base == NULL) return -EBADF;
	if (c->corrupt) return SHM_ECORRUPT;
	if (c->reading) return -EINVAL;
	if (!r->multi) {
		/* step 9's common case: a valid message at H, below the cached T or
		 * the T loaded now; anything else is the slow path's. */
		uint64_t h = c->head, t = c->tail;
		if (t == h) {
			t = atomic_load_explicit(shm__r64(r, SHM__O_TAIL), memory_order_acquire);
			if (!shm__ring_sane(r, h, t)) return shm__ccorrupt(c);
			c->tail = t;
		}
		if (t != h) {
			uint64_t w = atomic_load_explicit(shm__rrec(r, h), memory_order_acquire);
			int32_t l = (int32_t)(uint32_t)w;
			if ((uint32_t)(w >> 32) == SHM__R_DATA && l >= 8 && (uint64_t)l - 8 <= r->max_msg) {
				uint64_t a = shm__ralign((uint64_t)l);
				if (a <= t - h && (h & r->mask) + a <= r->cap) {
					*len = (uint64_t)l - 8;
					c->streak = 1;
					return 0;
				}
			}
		}
	}
	return shm__ring_next_slow(c, len, timeout_ns);
}

/* shm_ring_read returns the next message in place (zero-copy): *msg is valid
 * until shm_ring_release, which must come before the next read. Blocks while
 * the ring is empty. SHM_EOF once every producer is gone and the ring is
 * drained; SHM_EPEERDEAD once per producer that died (after the messages it
 * committed); SHM_ECORRUPT for anything invalid read from the ring. */
static inline int shm_ring_read(shm_ring_consumer *c, const void **msg, size_t *n, int64_t timeout_ns) {
	uint64_t len;
	int rc = shm__ring_next(c, &len, timeout_ns);
	if (rc < 0) return rc;
	c->reading = 1;
	c->rd_len = len;
	*msg = c->r->data + ((c->head + 8) & c->r->mask);
	*n = (size_t)len;
	return 0;
}

/* shm_ring_release gives the message returned by shm_ring_read back. */
static inline int shm_ring_release(shm_ring_consumer *c) {
	if (!c->attached || c->r->base == NULL) return -EBADF;
	if (!c->reading) return -EINVAL;
	c->reading = 0;
	shm__ring_advance(c, shm__ralign(8 + c->rd_len), 1, c->rd_len);
	return 0;
}

/* shm_ring_receive copies the next message into buf and returns its length;
 * SHM_ETOOLARGE (message kept) if cap is too small; else as shm_ring_read. */
static inline int64_t shm_ring_receive(shm_ring_consumer *c, void *buf, size_t cap, int64_t timeout_ns) {
	uint64_t len;
	int rc = shm__ring_next(c, &len, timeout_ns);
	if (rc < 0) return rc;
	if (len > cap) return SHM_ETOOLARGE;
	if (len) memcpy(buf, c->r->data + ((c->head + 8) & c->r->mask), (size_t)len);
	shm__ring_advance(c, shm__ralign(8 + len), 1, len);
	return (int64_t)len;
}

#ifdef __cplusplus
}
#endif

#endif /* SHM_H */
