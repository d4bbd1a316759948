// Baselines for shmbench: a lock-free SPSC ring of the same shape as
// package ring (8-byte record headers, 8-byte alignment, padding at the wrap,
// head and tail on their own cache lines) between two processes, and futex
// and spin ping-pongs. Built by shmbench with gcc -O2.
//
//   baseline ring SIZE COUNT      -> prints consumer elapsed ns
//   baseline futexpp ITER         -> prints p50 p99 round trip ns
//   baseline spinpp ITER          -> prints p50 p99 round trip ns
#define _GNU_SOURCE
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

struct hdr {
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) _Atomic uint32_t a;
	_Alignas(64) _Atomic uint32_t b;
	_Alignas(64) char pad[64];
};

static void *shared(size_t n) {
	void *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	return p;
}

static int ring(size_t size, long count) {
	uint64_t cap = 8u << 20, mask = cap - 1;
	struct hdr *h = shared(sizeof *h + cap);
	unsigned char *data = (unsigned char *)(h + 1);
	uint64_t rec = (size + 8 + 7) & ~7ull;
	int fd[2];
	if (pipe(fd)) return 1;
	pid_t pid = fork();
	if (pid == 0) { // consumer
		unsigned char *buf = malloc(size);
		uint64_t head = 0, t0 = 0;
		for (long i = 0; i < count; i++) {
			for (;;) {
				uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
				if (tail == head) continue;
				uint64_t w;
				memcpy(&w, data + (head & mask), 8);
				int32_t len = (int32_t)w, typ = (int32_t)(w >> 32);
				if (typ == 2) { head += len; atomic_store_explicit(&h->head, head, memory_order_release); continue; }
				memcpy(buf, data + (head & mask) + 8, len - 8);
				head += (len + 7) & ~7;
				atomic_store_explicit(&h->head, head, memory_order_release);
				break;
			}
			if (i == 0) t0 = now();
		}
		uint64_t el = now() - t0;
		if (write(fd[1], &el, 8) != 8) _exit(1);
		_exit(0);
	}
	unsigned char *msg = malloc(size);
	memset(msg, 7, size);
	uint64_t tail = 0;
	for (long i = 0; i < count; i++) {
		uint64_t idx = tail & mask, pad = 0;
		if (rec > cap - idx) pad = cap - idx;
		while (cap - (tail - atomic_load_explicit(&h->head, memory_order_acquire)) < pad + rec) {}
		if (pad) { uint64_t w = pad | (2ull << 32); memcpy(data + idx, &w, 8); tail += pad; idx = 0; }
		memcpy(data + idx + 8, msg, size);
		uint64_t w = (size + 8) | (1ull << 32);
		memcpy(data + idx, &w, 8);
		tail += rec;
		atomic_store_explicit(&h->tail, tail, memory_order_release);
	}
	uint64_t el;
	if (read(fd[0], &el, 8) != 8) return 1;
	waitpid(pid, 0, 0);
	printf("%llu\n", (unsigned long long)el);
	return 0;
}

static long futex(_Atomic uint32_t *a, int op, uint32_t v) {
	return syscall(SYS_futex, a, op, v, 0, 0, 0); // shared: no FUTEX_PRIVATE_FLAG
}

static int cmp(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

// pingpong: a and b are flags; the parent sets a, the child waits for a,
// clears it and sets b; the parent waits for b.
static int pingpong(long iter, int spin) {
	struct hdr *h = shared(sizeof *h);
	pid_t pid = fork();
	if (pid == 0) {
		for (long i = 0; i < iter; i++) {
			while (atomic_load(&h->a) == 0) if (!spin) futex(&h->a, FUTEX_WAIT, 0);
			atomic_store(&h->a, 0);
			atomic_store(&h->b, 1);
			if (!spin) futex(&h->b, FUTEX_WAKE, 1);
		}
		_exit(0);
	}
	uint64_t *rt = malloc(iter * sizeof *rt);
	for (long i = 0; i < iter; i++) {
		uint64_t t = now();
		atomic_store(&h->a, 1);
		if (!spin) futex(&h->a, FUTEX_WAKE, 1);
		while (atomic_load(&h->b) == 0) if (!spin) futex(&h->b, FUTEX_WAIT, 0);
		atomic_store(&h->b, 0);
		rt[i] = now() - t;
	}
	waitpid(pid, 0, 0);
	qsort(rt, iter, sizeof *rt, cmp);
	printf("%llu %llu\n", (unsigned long long)rt[iter / 2], (unsigned long long)rt[iter * 99 / 100]);
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 4 && !strcmp(argv[1], "ring")) return ring(atol(argv[2]), atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "futexpp")) return pingpong(atol(argv[2]), 0);
	if (argc == 3 && !strcmp(argv[1], "spinpp")) return pingpong(atol(argv[2]), 1);
	fprintf(stderr, "usage: baseline ring SIZE COUNT | futexpp ITER | spinpp ITER\n");
	return 2;
}
