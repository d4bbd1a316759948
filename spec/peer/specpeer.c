/* specpeer.c: a ring peer (SPEC.md section 9, ring layout version 3) written
 * from SPEC.md alone, without reading any implementation of it (issue 9
 * item 1). Clause numbers in the comments are SPEC.md's. C11, libc and Linux
 * system calls only (futex, OFD locks). Copy mode only: every MODE argument
 * is accepted and treated as copy, which is the same bytes in the ring.
 *
 *   specpeer produce NAME ID COUNT SEED MAXLEN [MODE] [pause-after K]
 *   specpeer consume NAME NPROD COUNT SEED MAXLEN [MODE] [pause-after K] [from K]
 *   specpeer check NAME
 *   specpeer hold-consumer NAME | hold-producer NAME
 *   specpeer create NAME CAP MAXMSG NSLOTS | unlink NAME
 *
 * Build: gcc -std=c11 -Wall -Wextra -Werror -O2 -o specpeer specpeer.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef _Atomic uint64_t a64;
typedef _Atomic uint32_t a32;

/* 9.2 constants */
#define RING_MAGIC 0x00474e49524d4853ull
#define RING_VERSION 3u
#define HEADER_SIZE 384u
#define SLOT_SIZE 64u
#define MIN_CAPACITY 64ull
#define MAX_CAPACITY 1073741824ull
#define MAX_SLOTS 1024u
#define TYPE_DATA 1
#define TYPE_PADDING 2
#define FLAG_MULTI 1u

/* 9.3 header offsets */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_FLAGS = 12, H_CAPACITY = 16, H_MAXMSG = 24,
	H_SLOTS = 32, H_DATAOFF = 40, H_TAIL = 64, H_ST_COMMITTED = 72,
	H_ST_COMMITTED_BYTES = 80, H_ST_FULL_WAITS = 88, H_HEAD = 128,
	H_ST_RELEASED = 136, H_ST_RELEASED_BYTES = 144, H_ST_EMPTY_WAITS = 152,
	H_CONS_WAITING = 192, H_ST_CONS_WAKES = 200, H_PROD_WAITING = 256,
	H_ST_PROD_WAKES = 264, H_CONS_TOKEN = 320, H_CONS_PID = 328,
	H_CONS_STATE = 336, H_ATTACHES = 340, H_PRODUCERS_EVER = 344,
	H_TAKEOVERS = 348, H_ST_REAPED = 352, H_ST_CONS_TAKEOVERS = 356,
	H_ST_RECOVERED = 360, H_ST_CORRUPTIONS = 364, H_ST_PROD_SLEEPS = 368,
	H_ST_CONS_SLEEPS = 376,
};
/* 9.4 slot offsets */
enum { S_TOKEN = 0, S_PID = 8, S_CLAIM_START = 16, S_CLAIM_END = 24, S_ST_COMMITTED = 32, S_ST_COMMITTED_BYTES = 40 };

/* Results. */
enum { RES_OK = 0, RES_EMPTY, RES_WAIT, RES_NOTRING, RES_CORRUPT, RES_BUSY, RES_PEERDEAD, RES_PEERCLOSED, RES_TOOLARGE, RES_EOF, RES_SYS };

static const char *rname(int r)
{
	switch (r) {
	case RES_OK: return "ok";
	case RES_EMPTY: return "empty";
	case RES_WAIT: return "wait";
	case RES_NOTRING: return "not a ring (SHM_ENOTRING)";
	case RES_CORRUPT: return "corrupt ring (SHM_ECORRUPT)";
	case RES_BUSY: return "busy (EBUSY)";
	case RES_PEERDEAD: return "peer dead (SHM_EPEERDEAD)";
	case RES_PEERCLOSED: return "peer closed (SHM_EPEERCLOSED)";
	case RES_TOOLARGE: return "message too large (SHM_ETOOLARGE)";
	case RES_EOF: return "end of file (SHM_EOF)";
	default: return "system error";
	}
}

static char g_why[256]; /* detail of the last error */

static void why(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_why, sizeof g_why, fmt, ap);
	va_end(ap);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("specpeer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void dieR(const char *what, int r)
{
	die("%s: %s: %s", what, rname(r), g_why);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* ---- 3. wait and wake (WAIT-1..3): process-shared futex ---- */

/* RING-23 step 1 (layout 3): the sleeper's cross-process barrier, so that
 * registered wakers may skip their own fence (RING-25). 1 if it ran, 0 if
 * it failed (then sleep at most 1 ms). This peer's own wakers do not
 * register: they keep seq_cst stores (the symmetric form). */
static int sleeper_barrier(void)
{
	for (;;) {
		if (syscall(SYS_membarrier, 1 << 1 /* MEMBARRIER_CMD_GLOBAL_EXPEDITED */, 0, 0) == 0)
			return 1;
		if (errno != EINTR)
			return 0;
	}
}

static void futex_wait(a32 *w, uint32_t val, uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	/* 0, EAGAIN, EINTR, ETIMEDOUT: the caller looks again (WAIT-3). */
	if (syscall(SYS_futex, (void *)w, FUTEX_WAIT, val, &ts, NULL, 0) != 0 &&
	    errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
		die("futex wait: %s", strerror(errno));
}

static void futex_wake_all(a32 *w)
{
	if (syscall(SYS_futex, (void *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) < 0)
		die("futex wake: %s", strerror(errno));
}

/* ---- 2. segment open, 5. liveness ---- */

#define LIVE_BASE (1ull << 62)
#define LIVE_SHIFT 16

struct seg {
	int fd;
	uint8_t *base;
	size_t size;
	int locked;
	off_t lockoff;
};

static uint64_t g_token; /* LIVE-1 */

static void make_token(void)
{
	for (;;) {
		uint64_t r;
		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			die("getrandom: %s", strerror(errno));
		r &= (1ull << 46) - 1;
		if (r & 0x3fffffff) {
			g_token = r;
			return;
		}
	}
}

static int token_valid(uint64_t tok) /* LIVE-2 */
{
	return (tok >> 46) == 0 && (tok & 0x3fffffff) != 0;
}

/* LIVE-3: take the presence lock on the mapping's description. */
static int presence_lock(struct seg *s)
{
	uint64_t start = now_ns(), pause = 100000;
	for (;;) {
		for (unsigned n = 0; n < 64; n++) {
			struct flock fl;
			memset(&fl, 0, sizeof fl);
			fl.l_type = F_WRLCK;
			fl.l_whence = SEEK_SET;
			fl.l_start = (off_t)(LIVE_BASE + (g_token << LIVE_SHIFT) + n);
			fl.l_len = 1;
			if (fcntl(s->fd, F_OFD_SETLK, &fl) == 0) {
				s->locked = 1;
				s->lockoff = fl.l_start;
				return 0;
			}
			if (errno == EINVAL)
				return 0; /* no OFD locks: map without a lock */
			if (errno != EAGAIN && errno != EACCES)
				return -1;
		}
		if (now_ns() - start >= 1000000000ull) {
			errno = EAGAIN;
			return -1;
		}
		sleep_ns(pause);
		pause *= 2;
		if (pause > 10000000)
			pause = 10000000;
	}
}

/* LIVE-5: 1 present (or cannot tell), 0 absent. */
static int alive(const struct seg *s, uint64_t tok)
{
	if (!token_valid(tok))
		return 0;
	if (tok == g_token)
		return 1;
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)(LIVE_BASE + (tok << LIVE_SHIFT));
	fl.l_len = 65536;
	if (fcntl(s->fd, F_OFD_GETLK, &fl) != 0)
		return 1;
	return fl.l_type != F_UNLCK;
}

/* NAME-1, NAME-2 (Linux), OPEN-1..3, MAP-1. Returns 0 or an errno. */
static int shm_path(char path[300], const char *name) /* NAME-1, NAME-2, 2.2 */
{
	if (name[0] == '/')
		name++;
	if (name[0] == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
		return EINVAL;
	if (strlen(name) > 255)
		return ENAMETOOLONG;
	snprintf(path, 300, "/dev/shm/%s", name);
	return 0;
}

static int seg_open(struct seg *s, const char *name)
{
	char path[300];
	int e0 = shm_path(path, name);
	if (e0)
		return e0;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP || e == EISDIR || e == ENXIO)
			e = EINVAL; /* not a shared memory object */
		return e;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return EINVAL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return e;
	}
	s->fd = fd;
	s->base = p;
	s->size = (size_t)st.st_size;
	s->locked = 0;
	if (presence_lock(s) != 0) { /* MAP-1 */
		int e = errno;
		munmap(p, s->size);
		close(fd);
		return e;
	}
	return 0;
}

static void seg_close(struct seg *s) /* MAP-2 */
{
	if (s->locked) {
		struct flock fl;
		memset(&fl, 0, sizeof fl);
		fl.l_type = F_UNLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = s->lockoff;
		fl.l_len = 1;
		(void)fcntl(s->fd, F_OFD_SETLK, &fl);
	}
	munmap(s->base, s->size);
	close(s->fd);
}

/* ---- 9. the ring ---- */

struct ring {
	struct seg seg;
	uint8_t *b;    /* segment base */
	uint64_t C, M, D;
	uint32_t S;
	int multi;
	int corrupt_counted;
};

static a64 *h64(struct ring *r, uint64_t off) { return (a64 *)(void *)(r->b + off); }
static a32 *h32(struct ring *r, uint64_t off) { return (a32 *)(void *)(r->b + off); }
static a64 *slot64(struct ring *r, uint32_t i, uint64_t off) { return h64(r, HEADER_SIZE + (uint64_t)SLOT_SIZE * i + off); }
static uint64_t offp(struct ring *r, uint64_t p) { return p & (r->C - 1); }
static a64 *W(struct ring *r, uint64_t p) { return h64(r, r->D + offp(r, p)); }
static uint64_t al(uint64_t n) { return (n + 7) & ~7ull; }
static uint64_t hdr(int32_t len, int32_t type) { return (uint64_t)(uint32_t)len | (uint64_t)(uint32_t)type << 32; }
static int32_t hlen(uint64_t w) { return (int32_t)(uint32_t)w; }
static int32_t htype(uint64_t w) { return (int32_t)(uint32_t)(w >> 32); }

static uint64_t ld(a64 *w) { return atomic_load(w); }
static void st(a64 *w, uint64_t v) { atomic_store(w, v); }
static int cas(a64 *w, uint64_t old, uint64_t v) { return atomic_compare_exchange_strong(w, &old, v); }
static void stat_add(a64 *w) { atomic_fetch_add_explicit(w, 1, memory_order_relaxed); }

static int corrupt(struct ring *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_why, sizeof g_why, fmt, ap);
	va_end(ap);
	if (!r->corrupt_counted) { /* RING-33: each end's first corrupt error */
		r->corrupt_counted = 1;
		atomic_fetch_add_explicit(h32(r, H_ST_CORRUPTIONS), 1, memory_order_relaxed);
	}
	return RES_CORRUPT;
}

/* RING-7: open and check, in the spec's order. */
static int ring_open(struct ring *r, const char *name)
{
	memset(r, 0, sizeof *r);
	int e = seg_open(&r->seg, name);
	if (e) {
		why("open %s: %s", name, strerror(e));
		return RES_SYS;
	}
	r->b = r->seg.base;
	uint64_t size = r->seg.size;
	int res;
	if (size < HEADER_SIZE) { /* 1 */
		why("segment of %llu bytes, smaller than a ring header", (unsigned long long)size);
		res = RES_NOTRING;
		goto fail;
	}
	uint64_t magic = atomic_load_explicit(h64(r, H_MAGIC), memory_order_acquire); /* 2 */
	for (int i = 0; magic == 0 && i < 200; i++) {
		sleep_ns(1000000);
		magic = atomic_load_explicit(h64(r, H_MAGIC), memory_order_acquire);
	}
	if (magic != RING_MAGIC) {
		why("magic %#llx", (unsigned long long)magic);
		res = RES_NOTRING;
		goto fail;
	}
	/* RING-6: bytes 8-47 are fixed after magic: read once, plainly. */
	uint32_t version, flags, slots;
	uint64_t C, M, D;
	memcpy(&version, r->b + H_VERSION, 4);
	memcpy(&flags, r->b + H_FLAGS, 4);
	memcpy(&C, r->b + H_CAPACITY, 8);
	memcpy(&M, r->b + H_MAXMSG, 8);
	memcpy(&slots, r->b + H_SLOTS, 4);
	memcpy(&D, r->b + H_DATAOFF, 8);
	if (version != RING_VERSION) { /* 3, VER-3 */
		why("ring layout version %u, supported %u", version, RING_VERSION);
		res = RES_NOTRING;
		goto fail;
	}
	res = RES_CORRUPT;
	if (C < MIN_CAPACITY || C > MAX_CAPACITY || (C & (C - 1)) != 0) { /* 4 */
		why("capacity %llu", (unsigned long long)C);
		goto fail;
	}
	if (M < 1 || M > C - 8) { /* 5 */
		why("max message %llu for capacity %llu", (unsigned long long)M, (unsigned long long)C);
		goto fail;
	}
	if (slots < 1 || slots > MAX_SLOTS || (slots > 1) != ((flags & FLAG_MULTI) != 0)) { /* 6 */
		why("%u slots with flags %#x", slots, flags);
		goto fail;
	}
	if (flags & ~FLAG_MULTI) { /* 7 */
		why("unknown flags %#x", flags);
		goto fail;
	}
	if (D != HEADER_SIZE + (uint64_t)SLOT_SIZE * slots) { /* 8 */
		why("data offset %llu for %u slots", (unsigned long long)D, slots);
		goto fail;
	}
	if (size < D + C) { /* 9 */
		why("segment of %llu bytes, ring needs %llu", (unsigned long long)size, (unsigned long long)(D + C));
		goto fail;
	}
	r->C = C;
	r->M = M;
	r->D = D;
	r->S = slots;
	r->multi = (flags & FLAG_MULTI) != 0;
	return RES_OK;
fail:
	seg_close(&r->seg);
	return res;
}

static void ring_close(struct ring *r) { seg_close(&r->seg); }

/* RING-24: wake the other side if it may sleep. */
static void wake(struct ring *r, uint64_t word, uint64_t statoff)
{
	a32 *w = h32(r, word);
	if (atomic_load(w) != 0 && atomic_exchange(w, 0) != 0) {
		stat_add(h64(r, statoff));
		futex_wake_all(w);
	}
}
static void wake_consumer(struct ring *r) { wake(r, H_CONS_WAITING, H_ST_CONS_WAKES); }
static void wake_producers(struct ring *r) { wake(r, H_PROD_WAITING, H_ST_PROD_WAKES); }

/* RING-19 check of a position pair. */
static int pos_ok(struct ring *r, uint64_t h, uint64_t t)
{
	return (h & 7) == 0 && (t & 7) == 0 && t - h <= r->C;
}

/* ---- consumer ---- */

struct death { uint64_t at, n; };

struct cons {
	struct ring *r;
	uint64_t H, Tc;
	uint32_t takeover_base;
	struct death deaths[64];
	int ndeaths;
	int reaped;          /* RING-27 ran at least once */
	int saw_death;       /* a producer died since attach (RING-32) */
	uint64_t last_reap;
	int pending;         /* recovery pending (RING-27) */
	int attach_pending;  /* attach's RING-28 waited on a live covering slot */
	uint64_t rel_count, rel_bytes;
};

static int recover(struct cons *c);

/* RING-9 */
static int cons_attach(struct cons *c, struct ring *r)
{
	memset(c, 0, sizeof *c);
	c->r = r;
	a64 *ct = h64(r, H_CONS_TOKEN);
	int got = 0;
	for (int i = 0; i < 64 && !got; i++) {
		uint64_t tok = ld(ct);
		if (tok == 0) {
			got = cas(ct, 0, g_token);
		} else if (alive(&r->seg, tok)) {
			why("consumer token %#llx is alive", (unsigned long long)tok);
			return RES_BUSY;
		} else if (cas(ct, tok, g_token)) {
			got = 1;
			atomic_fetch_add_explicit(h32(r, H_ST_CONS_TAKEOVERS), 1, memory_order_relaxed);
		}
	}
	if (!got) {
		why("consumer slot contended");
		return RES_BUSY;
	}
	atomic_store_explicit(h64(r, H_CONS_PID), (uint64_t)getpid(), memory_order_relaxed);
	atomic_store(h32(r, H_CONS_STATE), 1);
	c->takeover_base = atomic_load(h32(r, H_TAKEOVERS));
	uint64_t h = ld(h64(r, H_HEAD)), t = ld(h64(r, H_TAIL));
	if (!pos_ok(r, h, t)) {
		atomic_store_explicit(h64(r, H_CONS_PID), 0, memory_order_relaxed);
		cas(ct, g_token, 0);
		return corrupt(r, "head %llu, tail %llu", (unsigned long long)h, (unsigned long long)t);
	}
	c->H = c->Tc = h;
	c->rel_count = ld(h64(r, H_ST_RELEASED));
	c->rel_bytes = ld(h64(r, H_ST_RELEASED_BYTES));
	if (r->multi && h != t) {
		int res = recover(c);
		if (res == RES_WAIT)
			c->attach_pending = 1;
		else if (res != RES_OK) {
			atomic_store_explicit(h64(r, H_CONS_PID), 0, memory_order_relaxed);
			cas(ct, g_token, 0);
			return res;
		}
	}
	wake_producers(r);
	return RES_OK;
}

/* RING-10 */
static void cons_close(struct cons *c)
{
	struct ring *r = c->r;
	atomic_store(h32(r, H_CONS_STATE), 2);
	if (ld(h64(r, H_CONS_TOKEN)) == g_token) {
		atomic_store_explicit(h64(r, H_CONS_PID), 0, memory_order_relaxed);
		cas(h64(r, H_CONS_TOKEN), g_token, 0);
	}
	atomic_store(h32(r, H_PROD_WAITING), 0);
	futex_wake_all(h32(r, H_PROD_WAITING));
}

/* RING-22 */
static void cons_release(struct cons *c, uint64_t size, int type, uint64_t payload)
{
	struct ring *r = c->r;
	if (r->multi) {
		if (type != TYPE_PADDING)
			st(W(r, c->H), hdr((int32_t)size, TYPE_PADDING));
		if (size > 8)
			memset(r->b + r->D + offp(r, c->H) + 8, 0, size - 8);
		st(W(r, c->H), 0);
	}
	if (type == TYPE_DATA) { /* RING-33, just before the H store */
		c->rel_count++;
		c->rel_bytes += payload;
		atomic_store_explicit(h64(r, H_ST_RELEASED), c->rel_count, memory_order_relaxed);
		atomic_store_explicit(h64(r, H_ST_RELEASED_BYTES), c->rel_bytes, memory_order_relaxed);
	}
	c->H += size;
	atomic_store_explicit(h64(r, H_HEAD), c->H, memory_order_release);
	wake_producers(r);
}

/* RING-20, RING-21: one look, at most 64 records. RES_OK with a message copied
 * into buf (*n bytes), RES_EMPTY, or RES_CORRUPT. */
static int cons_poll(struct cons *c, uint8_t *buf, size_t cap, size_t *n)
{
	struct ring *r = c->r;
	for (int i = 0; i < 64; i++) {
		uint64_t w, avail;
		if (!r->multi) {
			if (c->H == c->Tc) {
				uint64_t t = atomic_load_explicit(h64(r, H_TAIL), memory_order_acquire);
				if (!pos_ok(r, c->H, t))
					return corrupt(r, "tail %llu with head %llu", (unsigned long long)t, (unsigned long long)c->H);
				c->Tc = t;
				if (t == c->H)
					return RES_EMPTY;
			}
			avail = c->Tc - c->H;
			w = atomic_load_explicit(W(r, c->H), memory_order_acquire);
		} else {
			w = atomic_load_explicit(W(r, c->H), memory_order_acquire);
			if (hlen(w) <= 0)
				return RES_EMPTY;
			uint64_t t = atomic_load_explicit(h64(r, H_TAIL), memory_order_acquire);
			if (!pos_ok(r, c->H, t))
				return corrupt(r, "tail %llu with head %llu", (unsigned long long)t, (unsigned long long)c->H);
			avail = t - c->H;
		}
		int32_t len = hlen(w), type = htype(w);
		if (len < 8)
			return corrupt(r, "record at %llu: length %d", (unsigned long long)c->H, len);
		uint64_t size = al((uint64_t)len);
		if (size > avail || offp(r, c->H) + size > r->C)
			return corrupt(r, "record at %llu: length %d past the tail or the data area", (unsigned long long)c->H, len);
		if (type != TYPE_PADDING && !(type == TYPE_DATA && (uint64_t)len - 8 <= r->M))
			return corrupt(r, "record at %llu: type %d, length %d", (unsigned long long)c->H, type, len);
		if (type == TYPE_PADDING) {
			cons_release(c, size, type, 0);
			continue;
		}
		uint64_t plen = (uint64_t)len - 8;
		if (plen > cap)
			return corrupt(r, "record at %llu: %llu bytes, buffer %zu", (unsigned long long)c->H, (unsigned long long)plen, cap);
		memcpy(buf, r->b + r->D + offp(r, c->H) + 8, plen);
		*n = plen;
		cons_release(c, size, type, plen);
		return RES_OK;
	}
	return RES_EMPTY;
}

static void add_death(struct cons *c, uint64_t at, uint64_t n)
{
	c->saw_death = 1;
	if (c->ndeaths > 0 && c->deaths[c->ndeaths - 1].at == at) {
		c->deaths[c->ndeaths - 1].n += n;
		return;
	}
	if (c->ndeaths == (int)(sizeof c->deaths / sizeof c->deaths[0])) {
		c->deaths[c->ndeaths - 1].n += n; /* later position is still after */
		if (at > c->deaths[c->ndeaths - 1].at)
			c->deaths[c->ndeaths - 1].at = at;
		return;
	}
	c->deaths[c->ndeaths].at = at;
	c->deaths[c->ndeaths].n = n;
	c->ndeaths++;
}

/* RING-30: pop a due report. */
static int death_due(struct cons *c)
{
	if (c->ndeaths == 0 || c->H < c->deaths[0].at)
		return 0;
	if (--c->deaths[0].n == 0) {
		memmove(c->deaths, c->deaths + 1, (size_t)(c->ndeaths - 1) * sizeof c->deaths[0]);
		c->ndeaths--;
	}
	return 1;
}

/* Reads (e, s) of slot i as RING-28 step 2 says. */
static void read_claim(struct ring *r, uint32_t i, uint64_t *s, uint64_t *e)
{
	uint64_t e1 = atomic_load_explicit(slot64(r, i, S_CLAIM_END), memory_order_acquire);
	uint64_t s1 = atomic_load_explicit(slot64(r, i, S_CLAIM_START), memory_order_acquire);
	uint64_t e2 = atomic_load_explicit(slot64(r, i, S_CLAIM_END), memory_order_acquire);
	for (int k = 1; k < 4 && e1 != e2; k++) {
		e1 = e2;
		s1 = atomic_load_explicit(slot64(r, i, S_CLAIM_START), memory_order_acquire);
		e2 = atomic_load_explicit(slot64(r, i, S_CLAIM_END), memory_order_acquire);
	}
	*s = s1;
	*e = e2;
}

/* RING-28. RES_OK (done or nothing to do), RES_WAIT (a live covering slot, or
 * the CAS lost), RES_CORRUPT. */
static int recover(struct cons *c)
{
	struct ring *r = c->r;
	uint64_t H = c->H;
	uint64_t t = atomic_load_explicit(h64(r, H_TAIL), memory_order_acquire);
	if (!pos_ok(r, H, t))
		return corrupt(r, "tail %llu with head %llu", (unsigned long long)t, (unsigned long long)H);
	if (t == H || hlen(atomic_load_explicit(W(r, H), memory_order_acquire)) > 0)
		return RES_OK;
	int covered = 0;
	uint64_t E = UINT64_MAX, minstart = UINT64_MAX;
	for (uint32_t i = 0; i < r->S; i++) {
		uint64_t s, e;
		read_claim(r, i, &s, &e);
		if (e != 0 && s > H && s < minstart)
			minstart = s;
		if (e != 0 && s <= H && H < e) {
			covered = 1;
			if (alive(&r->seg, ld(slot64(r, i, S_TOKEN))))
				return RES_WAIT;
			if (e < E)
				E = e;
		}
	}
	uint64_t w = atomic_load_explicit(W(r, H), memory_order_acquire);
	int32_t len = hlen(w);
	uint64_t size;
	if (len > 0)
		return RES_OK;
	uint64_t end = H + (r->C - offp(r, H)); /* end of the data area */
	if (!covered) {
		if (len < 0)
			return corrupt(r, "claimed record at %llu (length %d) that no slot announces", (unsigned long long)H, len);
		uint64_t lim = t;
		if (end < lim)
			lim = end;
		if (minstart < lim)
			lim = minstart;
		uint64_t p = H;
		while (p < lim && ld(W(r, p)) == 0)
			p += 8;
		size = p - H;
		if (size == 0)
			return corrupt(r, "zero record at %llu, and no run of zero words", (unsigned long long)H);
	} else if (len < 0) {
		size = al((uint64_t)(-(int64_t)len));
		if (size < 8 || size > t - H || offp(r, H) + size > r->C || (uint64_t)(-(int64_t)len) - 8 > r->M)
			return corrupt(r, "dead claim at %llu of length %d", (unsigned long long)H, -(int)(-(int64_t)len));
	} else {
		size = (E < t ? E : t) - H;
		if (size > r->C - offp(r, H))
			size = r->C - offp(r, H);
		if (size % 8)
			return corrupt(r, "dead claim at %llu ends at %llu", (unsigned long long)H, (unsigned long long)E);
	}
	if (size > INT32_MAX)
		return corrupt(r, "recovered padding of %llu bytes at %llu", (unsigned long long)size, (unsigned long long)H);
	if (!cas(W(r, H), w, hdr((int32_t)size, TYPE_PADDING)))
		return RES_WAIT;
	atomic_fetch_add_explicit(h32(r, H_ST_RECOVERED), 1, memory_order_relaxed);
	return RES_OK;
}

/* RING-27, then RING-28 when pending. Unlike the text, t is loaded for
 * each dead slot after its liveness check: with RING-27's single load
 * before the checks, a producer that wins its CAS on T after that load and
 * dies before its check has claim_start >= t, its slot is freed, and its
 * claimed record below T is then covered by no announcement (see
 * notes/specpeer.md). */
static int reap(struct cons *c)
{
	struct ring *r = c->r;
	int pending = 0;
	uint64_t dead = 0;
	for (uint32_t i = 0; i < r->S; i++) {
		uint64_t tok = ld(slot64(r, i, S_TOKEN));
		if (tok == 0 || alive(&r->seg, tok))
			continue;
		uint64_t t = ld(h64(r, H_TAIL));
		uint64_t e = atomic_load_explicit(slot64(r, i, S_CLAIM_END), memory_order_acquire);
		if (e != 0 && atomic_load_explicit(slot64(r, i, S_CLAIM_START), memory_order_acquire) < t && c->H < e) {
			pending = 1;
			continue;
		}
		if (e != 0)
			cas(slot64(r, i, S_CLAIM_END), e, 0);
		uint64_t p = ld(slot64(r, i, S_PID));
		if (ld(slot64(r, i, S_TOKEN)) == tok)
			cas(slot64(r, i, S_PID), p, 0);
		if (cas(slot64(r, i, S_TOKEN), tok, 0)) {
			dead++;
			atomic_fetch_add_explicit(h32(r, H_ST_REAPED), 1, memory_order_relaxed);
		}
	}
	uint32_t tk = atomic_load(h32(r, H_TAKEOVERS));
	dead += (uint32_t)(tk - c->takeover_base);
	c->takeover_base = tk;
	if (dead) {
		/* The position of the report: a T loaded after the deaths were
		 * found, so that every record the dead committed is below it
		 * (see notes/specpeer.md: RING-27's t is loaded before the
		 * liveness checks). */
		uint64_t t2 = ld(h64(r, H_TAIL));
		if (!pos_ok(r, c->H, t2))
			return corrupt(r, "tail %llu with head %llu", (unsigned long long)t2, (unsigned long long)c->H);
		add_death(c, t2, dead);
	}
	c->pending = pending;
	c->reaped = 1;
	c->last_reap = now_ns();
	if (r->multi && (pending || c->attach_pending)) {
		int res = recover(c);
		if (res == RES_CORRUPT)
			return res;
		if (res == RES_OK)
			c->attach_pending = 0;
		else
			c->pending = 1;
	}
	return RES_OK;
}

/* RING-32 */
static int at_eof(struct cons *c)
{
	struct ring *r = c->r;
	if (atomic_load(h32(r, H_PRODUCERS_EVER)) == 0)
		return 0;
	uint32_t a = atomic_load(h32(r, H_ATTACHES));
	if (a == 0 && !c->saw_death) /* RING-32: no producer has counted itself, none died */
		return 0;
	for (uint32_t i = 0; i < r->S; i++)
		if (ld(slot64(r, i, S_TOKEN)) != 0)
			return 0;
	if (atomic_load(h32(r, H_ATTACHES)) != a)
		return 0;
	return ld(h64(r, H_TAIL)) == c->H;
}

/* RING-23, consumer side. */
static void cons_sleep(struct cons *c, uint64_t ns)
{
	struct ring *r = c->r;
	a32 *w = h32(r, H_CONS_WAITING);
	atomic_store(w, 1);
	if (!sleeper_barrier() && ns > 1000000ull)
		ns = 1000000ull;
	if (!r->multi) {
		if (ld(h64(r, H_TAIL)) != c->H)
			return;
	} else if (hlen(ld(W(r, c->H))) > 0) {
		return;
	}
	if (at_eof(c)) /* not in RING-23's re-check: see notes/specpeer.md */
		return;
	atomic_fetch_add_explicit(h64(r, H_ST_CONS_SLEEPS), 1, memory_order_relaxed);
	futex_wait(w, 1, ns);
}

/* A blocking read (timeout_ns 0: forever). RES_OK, RES_PEERDEAD, RES_EOF,
 * RES_EMPTY (timed out), RES_CORRUPT. */
static int cons_read(struct cons *c, uint8_t *buf, size_t cap, size_t *n, uint64_t timeout_ns)
{
	uint64_t deadline = timeout_ns ? now_ns() + timeout_ns : 0;
	int counted = 0;
	for (;;) {
		int res = cons_poll(c, buf, cap, n);
		if (res != RES_EMPTY)
			return res;
		if (death_due(c))
			return RES_PEERDEAD;
		uint64_t now = now_ns();
		if (!c->reaped || c->pending || c->attach_pending || now - c->last_reap >= 10000000ull) {
			if ((res = reap(c)) != RES_OK)
				return res;
			if ((res = cons_poll(c, buf, cap, n)) != RES_EMPTY)
				return res;
			if (death_due(c))
				return RES_PEERDEAD;
		}
		if (c->ndeaths == 0 && at_eof(c))
			return RES_EOF;
		uint64_t ns = (c->pending || c->attach_pending) ? 10000000ull : 100000000ull;
		if (deadline) {
			now = now_ns();
			if (now >= deadline)
				return RES_EMPTY;
			if (deadline - now < ns)
				ns = deadline - now;
		}
		if (!counted) {
			counted = 1;
			stat_add(h64(c->r, H_ST_EMPTY_WAITS));
		}
		cons_sleep(c, ns);
	}
}

/* ---- producer ---- */

struct prod {
	struct ring *r;
	uint32_t slot;
	uint64_t T;      /* single producer: own T (RING-19) */
	uint64_t Hc;     /* cached H */
	uint64_t committed, committed_bytes;
};

/* RING-11 */
static int prod_attach(struct prod *p, struct ring *r)
{
	memset(p, 0, sizeof *p);
	p->r = r;
	atomic_store(h32(r, H_PRODUCERS_EVER), 1);
	int got = 0, takeover = 0;
	uint32_t i;
	for (i = 0; i < r->S && !got; i++) {
		a64 *tk = slot64(r, i, S_TOKEN);
		for (int k = 0; k < 4; k++) {
			uint64_t tok = ld(tk);
			if (tok == 0) {
				if (cas(tk, 0, g_token)) {
					got = 1;
					break;
				}
				continue;
			}
			if (ld(slot64(r, i, S_CLAIM_END)) != 0 || alive(&r->seg, tok))
				break;
			if (cas(tk, tok, g_token)) {
				got = takeover = 1;
				break;
			}
		}
		if (got)
			break;
	}
	if (!got) {
		why("no free producer slot of %u", r->S);
		return RES_BUSY;
	}
	p->slot = i;
	if (r->multi) { /* RING-33: load the slot's counts right after the CAS */
		p->committed = ld(slot64(r, i, S_ST_COMMITTED));
		p->committed_bytes = ld(slot64(r, i, S_ST_COMMITTED_BYTES));
	}
	wake_consumer(r);
	if (takeover)
		atomic_fetch_add(h32(r, H_TAKEOVERS), 1);
	atomic_store_explicit(slot64(r, i, S_PID), (uint64_t)getpid(), memory_order_relaxed);
	atomic_fetch_add(h32(r, H_ATTACHES), 1);
	uint64_t h = ld(h64(r, H_HEAD)), t = ld(h64(r, H_TAIL));
	if ((h & 7) || (t & 7) || (!r->multi && t - h > r->C)) {
		atomic_store_explicit(slot64(r, i, S_PID), 0, memory_order_relaxed);
		cas(slot64(r, i, S_TOKEN), g_token, 0);
		return corrupt(r, "head %llu, tail %llu", (unsigned long long)h, (unsigned long long)t);
	}
	p->T = t;
	p->Hc = h;
	if (!r->multi) {
		p->committed = ld(h64(r, H_ST_COMMITTED));
		p->committed_bytes = ld(h64(r, H_ST_COMMITTED_BYTES));
	}
	return RES_OK;
}

/* RING-13 (copy mode: no claim is ever open between sends). */
static void prod_close(struct prod *p)
{
	struct ring *r = p->r;
	atomic_store_explicit(slot64(r, p->slot, S_CLAIM_END), 0, memory_order_release);
	if (ld(slot64(r, p->slot, S_TOKEN)) == g_token) {
		atomic_store_explicit(slot64(r, p->slot, S_PID), 0, memory_order_relaxed);
		cas(slot64(r, p->slot, S_TOKEN), g_token, 0);
	}
	atomic_store(h32(r, H_CONS_WAITING), 0);
	futex_wake_all(h32(r, H_CONS_WAITING));
}

/* RING-23 producer side, with RING-31. RES_OK (look again) or RES_PEERDEAD. */
static int prod_sleep(struct prod *p, uint64_t size)
{
	struct ring *r = p->r;
	a32 *w = h32(r, H_PROD_WAITING);
	/* MAY spin first: a few yields before the futex. */
	for (int i = 0; i < 20; i++) {
		uint64_t t = r->multi ? ld(h64(r, H_TAIL)) : p->T;
		if (r->C - (t - ld(h64(r, H_HEAD))) >= size || atomic_load(h32(r, H_CONS_STATE)) == 2)
			return RES_OK;
		sched_yield();
	}
	atomic_store(w, 1);
	uint64_t ns = sleeper_barrier() ? 100000000ull : 1000000ull;
	uint64_t t = r->multi ? ld(h64(r, H_TAIL)) : p->T;
	if (r->C - (t - ld(h64(r, H_HEAD))) >= size || atomic_load(h32(r, H_CONS_STATE)) == 2)
		return RES_OK;
	uint64_t ct = ld(h64(r, H_CONS_TOKEN));
	if (ct != 0 && atomic_load(h32(r, H_CONS_STATE)) != 2 && !alive(&r->seg, ct)) {
		why("consumer token %#llx is dead", (unsigned long long)ct);
		return RES_PEERDEAD;
	}
	atomic_fetch_add_explicit(h64(r, H_ST_PROD_SLEEPS), 1, memory_order_relaxed);
	futex_wait(w, 1, ns);
	return RES_OK;
}

/* RING-19 check of H against the producer's T, and reload of the cache. */
static int load_head(struct prod *p, uint64_t t)
{
	uint64_t h = atomic_load_explicit(h64(p->r, H_HEAD), memory_order_acquire);
	if ((h & 7) || t - h > p->r->C)
		return corrupt(p->r, "head %llu with tail %llu", (unsigned long long)h, (unsigned long long)t);
	p->Hc = h;
	return RES_OK;
}

/* RING-14 */
static int send_single(struct prod *p, const uint8_t *m, uint64_t n)
{
	struct ring *r = p->r;
	int waited = 0, res;
	uint64_t size = al(n + 8);
	for (;;) {
		if (atomic_load(h32(r, H_CONS_STATE)) == 2) {
			why("consumer closed");
			return RES_PEERCLOSED;
		}
		uint64_t t = p->T;
		uint64_t room = r->C - offp(r, t);
		uint64_t pad = size > room ? room : 0;
		uint64_t fr = r->C - (t - p->Hc);
		if (pad + size > fr) {
			if ((res = load_head(p, t)) != RES_OK)
				return res;
			fr = r->C - (t - p->Hc);
		}
		if (pad + size <= fr) {
			if (pad)
				atomic_store_explicit(W(r, t), hdr((int32_t)pad, TYPE_PADDING), memory_order_relaxed);
			memcpy(r->b + r->D + offp(r, t + pad) + 8, m, n);
			atomic_store_explicit(W(r, t + pad), hdr((int32_t)(n + 8), TYPE_DATA), memory_order_relaxed);
			p->committed++;
			p->committed_bytes += n;
			atomic_store_explicit(h64(r, H_ST_COMMITTED), p->committed, memory_order_relaxed);
			atomic_store_explicit(h64(r, H_ST_COMMITTED_BYTES), p->committed_bytes, memory_order_relaxed);
			p->T = t + pad + size;
			st(h64(r, H_TAIL), p->T);
			wake_consumer(r);
			return RES_OK;
		}
		if (pad > 0 && pad <= fr) {
			atomic_store_explicit(W(r, t), hdr((int32_t)pad, TYPE_PADDING), memory_order_relaxed);
			p->T = t + pad;
			st(h64(r, H_TAIL), p->T);
			wake_consumer(r);
			continue;
		}
		if (!waited) {
			waited = 1;
			stat_add(h64(r, H_ST_FULL_WAITS));
		}
		if ((res = prod_sleep(p, size)) != RES_OK)
			return res;
	}
}

/* RING-18: a consistent pair (h, t). RES_OK, RES_WAIT (contended), RES_CORRUPT. */
static int fresh_pair(struct prod *p, uint64_t *t)
{
	struct ring *r = p->r;
	for (int i = 0; i < 100; i++) {
		uint64_t t1 = atomic_load_explicit(h64(r, H_TAIL), memory_order_acquire);
		uint64_t h = atomic_load_explicit(h64(r, H_HEAD), memory_order_acquire);
		uint64_t t2 = atomic_load_explicit(h64(r, H_TAIL), memory_order_acquire);
		if (t1 == t2) {
			if (!pos_ok(r, h, t1))
				return corrupt(r, "head %llu, tail %llu", (unsigned long long)h, (unsigned long long)t1);
			p->Hc = h;
			*t = t1;
			return RES_OK;
		}
	}
	return RES_WAIT;
}

/* RING-15, RING-17 */
static int send_multi(struct prod *p, const uint8_t *m, uint64_t n)
{
	struct ring *r = p->r;
	a64 *cs = slot64(r, p->slot, S_CLAIM_START), *ce = slot64(r, p->slot, S_CLAIM_END);
	a64 *T = h64(r, H_TAIL);
	uint64_t size = al(n + 8);
	int waited = 0, res;
	for (;;) {
		int full = 0;
		for (int round = 0; round < 64 && !full; round++) {
			if (atomic_load(h32(r, H_CONS_STATE)) == 2) { /* RING-14 */
				why("consumer closed");
				return RES_PEERCLOSED;
			}
			uint64_t t = ld(T);
			int fresh = 0;
			if ((t & 7) || t - p->Hc > r->C || r->C - (t - p->Hc) < size + (size > r->C - offp(r, t) ? r->C - offp(r, t) : 0)) {
				res = fresh_pair(p, &t);
				if (res == RES_CORRUPT)
					return res;
				if (res == RES_WAIT) {
					full = 1;
					break;
				}
				fresh = 1;
			}
			uint64_t room = r->C - offp(r, t);
			uint64_t pad = size > room ? room : 0;
			uint64_t fr = r->C - (t - p->Hc);
			if (pad + size > fr) {
				if (!fresh)
					continue; /* cannot happen: a stale pair is refreshed above */
				if (pad == 0 || pad > fr) {
					full = 1;
					break;
				}
				/* step 6: the padding alone */
				st(cs, t);
				atomic_store_explicit(ce, t + pad, memory_order_release);
				if (cas(T, t, t + pad)) {
					st(W(r, t), hdr((int32_t)pad, TYPE_PADDING));
					atomic_store_explicit(ce, 0, memory_order_release);
					wake_consumer(r);
				} else {
					atomic_store_explicit(ce, 0, memory_order_release);
				}
				continue;
			}
			uint64_t e = t + pad + size;
			st(cs, t); /* step 3 */
			atomic_store_explicit(ce, e, memory_order_release);
			if (!cas(T, t, e)) { /* step 4 */
				atomic_store_explicit(ce, 0, memory_order_release);
				continue;
			}
			if (pad) /* step 5 */
				st(W(r, t), hdr((int32_t)pad, TYPE_PADDING));
			st(W(r, t + pad), hdr(-(int32_t)(n + 8), TYPE_DATA));
			if (pad)
				wake_consumer(r);
			memcpy(r->b + r->D + offp(r, t + pad) + 8, m, n);
			/* RING-17, with the statistics just before the commit store */
			p->committed++;
			p->committed_bytes += n;
			atomic_store_explicit(slot64(r, p->slot, S_ST_COMMITTED), p->committed, memory_order_relaxed);
			atomic_store_explicit(slot64(r, p->slot, S_ST_COMMITTED_BYTES), p->committed_bytes, memory_order_relaxed);
			atomic_store_explicit(W(r, t + pad), hdr((int32_t)(n + 8), TYPE_DATA), memory_order_release);
			atomic_store_explicit(ce, 0, memory_order_release);
			wake_consumer(r);
			return RES_OK;
		}
		if (!waited) {
			waited = 1;
			stat_add(h64(r, H_ST_FULL_WAITS));
		}
		if ((res = prod_sleep(p, size)) != RES_OK)
			return res;
	}
}

static int prod_send(struct prod *p, const uint8_t *m, uint64_t n)
{
	if (n > p->r->M) {
		why("%llu bytes, max %llu", (unsigned long long)n, (unsigned long long)p->r->M);
		return RES_TOOLARGE;
	}
	return p->r->multi ? send_multi(p, m, n) : send_single(p, m, n);
}

/* ---- the test messages (message(p, k, seed, maxlen) of ring/interop_py_test.go) ---- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	uint64_t z = x;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t message(uint8_t *b, uint32_t p, uint64_t k, uint64_t seed, uint64_t maxlen)
{
	size_t n = 16 + (size_t)(mix(seed ^ ((uint64_t)p << 40) ^ k) % (maxlen - 16 + 1));
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(p >> (8 * i));
	for (int i = 0; i < 4; i++)
		b[4 + i] = (uint8_t)(n >> (8 * i));
	for (int i = 0; i < 8; i++)
		b[8 + i] = (uint8_t)(k >> (8 * i));
	for (size_t i = 16; i < n; i++)
		b[i] = (uint8_t)(k + i + 131ull * p);
	return n;
}

/* ---- commands ---- */

static uint64_t num(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s || s[0] == '-')
		die("bad %s \"%s\"", what, s);
	return v;
}

static void hold_forever(void)
{
	for (;;)
		sleep(1); /* killed by the test */
}

/* Optional trailing arguments: [MODE] [pause-after K] [from K]. */
static void options(int argc, char **argv, int i, uint64_t *pause, uint64_t *from)
{
	*pause = 0;
	if (from)
		*from = 0;
	if (i < argc && (strcmp(argv[i], "copy") == 0 || strcmp(argv[i], "zerocopy") == 0 || strcmp(argv[i], "mixed") == 0))
		i++;
	while (i < argc) {
		if (strcmp(argv[i], "pause-after") == 0 && i + 1 < argc)
			*pause = num(argv[i + 1], "pause-after");
		else if (strcmp(argv[i], "from") == 0 && i + 1 < argc && from)
			*from = num(argv[i + 1], "from");
		else
			die("unknown argument %s", argv[i]);
		i += 2;
	}
}

static void open_ring(struct ring *r, const char *name)
{
	int res = ring_open(r, name);
	if (res != RES_OK)
		dieR("open", res);
}

static int cmd_produce(int argc, char **argv)
{
	if (argc < 7)
		die("usage: produce NAME ID COUNT SEED MAXLEN [MODE] [pause-after K]");
	uint64_t id = num(argv[3], "ID"), count = num(argv[4], "COUNT"), seed = num(argv[5], "SEED"), maxlen = num(argv[6], "MAXLEN");
	uint64_t pause;
	options(argc, argv, 7, &pause, NULL);
	if (maxlen < 16 || id > UINT32_MAX)
		die("MAXLEN must be at least 16 and ID a u32");
	struct ring r;
	open_ring(&r, argv[2]);
	if (maxlen > r.M)
		die("MAXLEN %llu above the ring's max message %llu", (unsigned long long)maxlen, (unsigned long long)r.M);
	struct prod p;
	int res = prod_attach(&p, &r);
	if (res != RES_OK)
		dieR("producer attach", res);
	uint8_t *buf = malloc(maxlen);
	if (!buf)
		die("out of memory");
	for (uint64_t k = 0; k < count; k++) {
		if (pause && k == pause) {
			printf("paused %llu\n", (unsigned long long)pause);
			fflush(stdout);
			hold_forever();
		}
		size_t n = message(buf, (uint32_t)id, k, seed, maxlen);
		if ((res = prod_send(&p, buf, n)) != RES_OK)
			dieR("send", res);
	}
	if (pause && count == pause) {
		printf("paused %llu\n", (unsigned long long)pause);
		fflush(stdout);
		hold_forever();
	}
	prod_close(&p);
	ring_close(&r);
	free(buf);
	return 0;
}

static int cmd_consume(int argc, char **argv)
{
	if (argc < 7)
		die("usage: consume NAME NPROD COUNT SEED MAXLEN [MODE] [pause-after K] [from K]");
	uint64_t nprod = num(argv[3], "NPROD"), count = num(argv[4], "COUNT"), seed = num(argv[5], "SEED"), maxlen = num(argv[6], "MAXLEN");
	uint64_t pause, from;
	options(argc, argv, 7, &pause, &from);
	if (maxlen < 16 || nprod < 1 || nprod > 1u << 20)
		die("MAXLEN must be at least 16 and NPROD 1 to 2^20");
	struct ring r;
	open_ring(&r, argv[2]);
	struct cons c;
	int res = cons_attach(&c, &r);
	if (res != RES_OK)
		dieR("consumer attach", res);
	uint64_t *next = calloc(nprod, sizeof *next), *got = calloc(nprod, sizeof *got);
	uint8_t *buf = malloc(r.M), *want = malloc(maxlen);
	if (!next || !got || !buf || !want)
		die("out of memory");
	for (uint64_t i = 0; i < nprod; i++)
		next[i] = from;
	uint64_t total = 0;
	int deaths = 0;
	for (;;) {
		size_t n;
		res = cons_read(&c, buf, r.M, &n, 0);
		if (res == RES_PEERDEAD) {
			deaths++;
			printf("peer-dead %llu\n", (unsigned long long)total);
			fflush(stdout);
			continue;
		}
		if (res == RES_EOF)
			break;
		if (res != RES_OK)
			dieR("read", res);
		if (n < 16)
			die("message %llu: %zu bytes", (unsigned long long)total, n);
		uint32_t p = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
		if (p >= nprod)
			die("message %llu from producer %u of %llu", (unsigned long long)total, p, (unsigned long long)nprod);
		if (next[p] >= count)
			die("producer %u: more than %llu messages", p, (unsigned long long)count);
		size_t wn = message(want, p, next[p], seed, maxlen);
		if (wn != n || memcmp(want, buf, n) != 0)
			die("producer %u message %llu differs (%zu bytes, want %zu)", p, (unsigned long long)next[p], n, wn);
		next[p]++;
		got[p]++;
		total++;
		if (pause && total == pause) {
			printf("paused %llu\n", (unsigned long long)pause);
			fflush(stdout);
			hold_forever();
		}
	}
	int all = 1;
	for (uint64_t i = 0; i < nprod; i++)
		all &= next[i] == count;
	if (all) {
		printf("ok %llu\n", (unsigned long long)total);
	} else if (deaths) {
		printf("ended");
		for (uint64_t i = 0; i < nprod; i++)
			printf(" %llu", (unsigned long long)got[i]);
		printf("\n");
	} else {
		for (uint64_t i = 0; i < nprod; i++)
			if (next[i] != count)
				die("end of stream with producer %llu at message %llu of %llu", (unsigned long long)i, (unsigned long long)next[i], (unsigned long long)count);
	}
	cons_close(&c);
	ring_close(&r);
	free(next);
	free(got);
	free(buf);
	free(want);
	return 0;
}

static int cmd_check(const char *name)
{
	struct ring r;
	open_ring(&r, name);
	struct cons c;
	int res = cons_attach(&c, &r);
	if (res != RES_OK)
		dieR("consumer attach", res);
	uint8_t *buf = malloc(r.M);
	if (!buf)
		die("out of memory");
	size_t n;
	res = cons_read(&c, buf, r.M, &n, 1000000000ull);
	if (res == RES_OK)
		printf("ok %zu\n", n);
	else if (res == RES_EMPTY || res == RES_EOF)
		printf("empty\n");
	else
		dieR("read", res);
	cons_close(&c);
	ring_close(&r);
	free(buf);
	return 0;
}

/* 2.3 CRE-1..5: an exclusive create of size bytes, mapped, presence lock
 * taken. Returns 0 or an errno; on failure nothing is left. */
static int seg_create(struct seg *s, const char *name, uint64_t size, mode_t perm)
{
	char path[300], tmp[64] = "";
	int e = shm_path(path, name);
	if (e)
		return e;
	int fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, perm); /* CRE-1 */
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		uint64_t r;
		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			return errno;
		snprintf(tmp, sizeof tmp, "/dev/shm/.shm-tmp-%016llx", (unsigned long long)r);
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
		if (fd < 0)
			tmp[0] = 0;
	}
	if (fd < 0)
		return errno;
	if (fchmod(fd, perm) != 0) /* CRE-2 */
		goto fail;
	if (fallocate(fd, 0, 0, (off_t)size) != 0) { /* CRE-3 */
		if (errno != EOPNOTSUPP || ftruncate(fd, (off_t)size) != 0)
			goto fail;
	}
	if (tmp[0]) { /* CRE-4 */
		if (link(tmp, path) != 0)
			goto fail;
		unlink(tmp);
		tmp[0] = 0;
	} else {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0 &&
		    (errno != ENOENT || linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) != 0))
			goto fail;
	}
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); /* CRE-5 */
	if (p == MAP_FAILED) {
		e = errno;
		unlink(path);
		close(fd);
		return e;
	}
	s->fd = fd;
	s->base = p;
	s->size = (size_t)size;
	s->locked = 0;
	if (presence_lock(s) != 0) { /* MAP-1 */
		e = errno;
		munmap(p, s->size);
		unlink(path);
		close(fd);
		return e;
	}
	return 0;
fail:
	e = errno;
	if (tmp[0])
		unlink(tmp);
	close(fd);
	return e;
}

/* create NAME CAP MAXMSG NSLOTS: RING-5 on a new segment of D + C bytes. */
static int cmd_create(int argc, char **argv)
{
	if (argc != 6)
		die("usage: create NAME CAP MAXMSG NSLOTS");
	uint64_t C = num(argv[3], "CAP"), M = num(argv[4], "MAXMSG"), S = num(argv[5], "NSLOTS");
	if (C < MIN_CAPACITY || C > MAX_CAPACITY || (C & (C - 1)) != 0 || M < 1 || M > C - 8 || S < 1 || S > MAX_SLOTS)
		die("create: bad geometry (CAP a power of two 64..2^30, 1 <= MAXMSG <= CAP-8, 1 <= NSLOTS <= 1024)");
	uint64_t D = HEADER_SIZE + (uint64_t)SLOT_SIZE * S;
	struct seg s;
	int e = seg_create(&s, argv[2], D + C, 0600);
	if (e)
		die("create %s: %s", argv[2], strerror(e));
	uint32_t version = RING_VERSION, flags = S > 1 ? FLAG_MULTI : 0, slots = (uint32_t)S;
	/* RING-6: plain writes before magic; the segment is zero-filled. */
	memcpy(s.base + H_VERSION, &version, 4);
	memcpy(s.base + H_FLAGS, &flags, 4);
	memcpy(s.base + H_CAPACITY, &C, 8);
	memcpy(s.base + H_MAXMSG, &M, 8);
	memcpy(s.base + H_SLOTS, &slots, 4);
	memcpy(s.base + H_DATAOFF, &D, 8);
	atomic_store_explicit((a64 *)(void *)(s.base + H_MAGIC), RING_MAGIC, memory_order_release);
	seg_close(&s);
	return 0;
}

static int cmd_hold(const char *name, int consumer)
{
	struct ring r;
	open_ring(&r, name);
	int res;
	if (consumer) {
		struct cons c;
		res = cons_attach(&c, &r);
	} else {
		struct prod p;
		res = prod_attach(&p, &r);
	}
	if (res != RES_OK)
		dieR("attach", res);
	printf("ready\n");
	fflush(stdout);
	hold_forever();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: specpeer create|produce|consume|check|hold-consumer|hold-producer|unlink NAME ...");
	make_token();
	const char *cmd = argv[1];
	if (strcmp(cmd, "create") == 0)
		return cmd_create(argc, argv);
	if (strcmp(cmd, "produce") == 0)
		return cmd_produce(argc, argv);
	if (strcmp(cmd, "consume") == 0)
		return cmd_consume(argc, argv);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argv[2]);
	if (strcmp(cmd, "hold-consumer") == 0)
		return cmd_hold(argv[2], 1);
	if (strcmp(cmd, "hold-producer") == 0)
		return cmd_hold(argv[2], 0);
	if (strcmp(cmd, "unlink") == 0) {
		char path[300];
		int e = shm_path(path, argv[2]);
		if (e)
			die("unlink %s: %s", argv[2], strerror(e));
		if (unlink(path) != 0) /* MAP-3 */
			die("unlink %s: %s", path, strerror(errno));
		return 0;
	}
	die("unknown command %s", cmd);
	return 1;
}
