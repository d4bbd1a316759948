/* The C end of xlangbench: a producer or a consumer on a ring made by the
 * Go side, through c/shm.h's ring API alone. xlangbench builds it with
 *
 *   gcc -std=c11 -O2 -I REPO/c -o ringbench ringbench.c -lrt
 *
 * (the header is read from the repository at build time, not embedded).
 *
 *   ringbench produce NAME SIZE COUNT
 *       attaches a producer, sends COUNT messages of SIZE bytes by copy
 *       (shm_ring_send), message i starting with i as 8 little-endian
 *       bytes, then closes its end.
 *   ringbench consume NAME SIZE COUNT
 *       attaches the consumer, prints "ready", receives COUNT messages by
 *       copy (shm_ring_receive), checks each one's length and the last
 *       one's number, then expects the end of the stream; prints the
 *       nanoseconds from the first message to the last.
 *
 * Errors go to standard error naming the call; exit status 1.
 */
#include "shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what, long long rc) {
	fprintf(stderr, "ringbench: %s: %s (%lld)\n", what, shm_strerror((int)rc), rc);
	exit(1);
}

static int64_t now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t num(const char *s) {
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "ringbench: bad number %s\n", s);
		exit(2);
	}
	return (uint64_t)v;
}

static void put64(unsigned char *b, uint64_t v) {
	for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *b) {
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
	return v;
}

int main(int argc, char **argv) {
	if (argc != 5 || (strcmp(argv[1], "produce") != 0 && strcmp(argv[1], "consume") != 0)) {
		fprintf(stderr, "usage: ringbench produce|consume NAME SIZE COUNT\n");
		return 2;
	}
	const char *name = argv[2];
	uint64_t size = num(argv[3]), count = num(argv[4]);
	if (size < 8 || count < 1) {
		fprintf(stderr, "ringbench: SIZE must be at least 8 and COUNT at least 1\n");
		return 2;
	}
	unsigned char *buf = calloc(1, size);
	if (buf == NULL) die("calloc", -ENOMEM);
	shm_ring r;
	int rc = shm_ring_open(&r, name);
	if (rc < 0) die("shm_ring_open", rc);
	if (argv[1][0] == 'p') {
		shm_ring_producer p;
		rc = shm_ring_producer_attach(&r, &p, 0);
		if (rc < 0) die("shm_ring_producer_attach", rc);
		memset(buf, 7, size);
		for (uint64_t i = 0; i < count; i++) {
			put64(buf, i);
			rc = shm_ring_send(&p, buf, size, -1);
			if (rc < 0) die("shm_ring_send", rc);
		}
		shm_ring_producer_close(&p);
	} else {
		shm_ring_consumer c;
		rc = shm_ring_consumer_attach(&r, &c, 0);
		if (rc < 0) die("shm_ring_consumer_attach", rc);
		printf("ready\n");
		fflush(stdout);
		int64_t t0 = 0;
		for (uint64_t i = 0; i < count; i++) {
			int64_t n = shm_ring_receive(&c, buf, size, -1);
			if (n < 0) die("shm_ring_receive", n);
			if ((uint64_t)n != size) {
				fprintf(stderr, "ringbench: message %llu: %lld bytes, want %llu\n",
				        (unsigned long long)i, (long long)n, (unsigned long long)size);
				return 1;
			}
			if (i == 0) t0 = now();
		}
		int64_t el = now() - t0;
		if (get64(buf) != count - 1) {
			fprintf(stderr, "ringbench: last message is number %llu, want %llu\n",
			        (unsigned long long)get64(buf), (unsigned long long)(count - 1));
			return 1;
		}
		int64_t n = shm_ring_receive(&c, buf, size, 10000000000ll);
		if (n >= 0) {
			fprintf(stderr, "ringbench: a message after the last one, want the end of the stream\n");
			return 1;
		}
		if (n != SHM_EOF) die("shm_ring_receive after the last message (want SHM_EOF)", n);
		shm_ring_consumer_close(&c);
		printf("%lld\n", (long long)el);
	}
	shm_ring_close(&r);
	free(buf);
	return 0;
}
