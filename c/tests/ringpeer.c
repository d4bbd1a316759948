/* Ring peer for tests, built from c/shm.h alone, with the command line of
 * python/tests/ringpeer.py; driven by ring/interop_c_test.go.
 *
 *   create NAME CAP MAXMSG NSLOTS | unlink NAME
 *   produce NAME ID COUNT SEED MAXLEN [zerocopy]
 *   consume NAME NPROD COUNT SEED MAXLEN [zerocopy]   (prints "ok N")
 *   hold-consumer NAME | hold-producer NAME            (prints "ready", sleeps)
 */
#include "../shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, int rc) {
	fprintf(stderr, "ringpeer: %s: %s (%d)\n", what, shm_strerror(rc), rc);
	exit(1);
}

static uint64_t num(const char *s) {
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "ringpeer: bad number %s\n", s);
		exit(2);
	}
	return (uint64_t)v;
}

static uint64_t splitmix64(uint64_t x) {
	x += 0x9E3779B97F4A7C15ull;
	uint64_t z = x;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* message writes message k of producer p into b and returns its length. */
static size_t message(unsigned char *b, uint32_t p, uint64_t k, uint64_t seed, uint64_t maxlen) {
	size_t n = (size_t)(16 + splitmix64(seed ^ ((uint64_t)p << 40) ^ k) % (maxlen - 16 + 1));
	for (int i = 0; i < 4; i++) b[i] = (unsigned char)(p >> (8 * i));
	for (int i = 0; i < 4; i++) b[4 + i] = (unsigned char)((uint32_t)n >> (8 * i));
	for (int i = 0; i < 8; i++) b[8 + i] = (unsigned char)(k >> (8 * i));
	unsigned base = (unsigned)((k + 131 * (uint64_t)p) & 0xFF);
	for (size_t i = 16; i < n; i++) b[i] = (unsigned char)((base + i) & 0xFF);
	return n;
}

static void usage(void) {
	fprintf(stderr, "usage: ringpeer create NAME CAP MAXMSG NSLOTS | unlink NAME |\n"
	                "  produce NAME ID COUNT SEED MAXLEN [zerocopy] |\n"
	                "  consume NAME NPROD COUNT SEED MAXLEN [zerocopy] |\n"
	                "  hold-consumer NAME | hold-producer NAME\n");
	exit(2);
}

int main(int argc, char **argv) {
	if (argc < 3) usage();
	const char *cmd = argv[1], *name = argv[2];
	shm_ring r;
	int rc;
	if (strcmp(cmd, "create") == 0) {
		if (argc != 6) usage();
		rc = shm_ring_create(&r, name, num(argv[3]), num(argv[4]), (uint32_t)num(argv[5]), 0600);
		if (rc < 0) die("shm_ring_create", rc);
		rc = shm_ring_close(&r);
		if (rc < 0) die("shm_ring_close", rc);
	} else if (strcmp(cmd, "unlink") == 0) {
		rc = shm_seg_unlink(name);
		if (rc < 0) die("shm_seg_unlink", rc);
	} else if (strcmp(cmd, "produce") == 0 || strcmp(cmd, "consume") == 0) {
		if (argc != 7 && argc != 8) usage();
		uint64_t id = num(argv[3]), count = num(argv[4]), seed = num(argv[5]), maxlen = num(argv[6]);
		int zc = argc == 8 && strcmp(argv[7], "zerocopy") == 0;
		if (maxlen < 16 || maxlen > (1u << 30)) usage();
		unsigned char *m = malloc((size_t)maxlen), *got = malloc((size_t)maxlen);
		if (m == NULL || got == NULL) die("malloc", -ENOMEM);
		rc = shm_ring_open(&r, name);
		if (rc < 0) die("shm_ring_open", rc);
		if (cmd[0] == 'p') {
			shm_ring_producer p;
			rc = shm_ring_producer_attach(&r, &p, 0);
			if (rc < 0) die("shm_ring_producer_attach", rc);
			for (uint64_t k = 0; k < count; k++) {
				size_t n = message(m, (uint32_t)id, k, seed, maxlen);
				if (zc) {
					void *buf;
					rc = shm_ring_claim(&p, n, &buf, -1);
					if (rc < 0) die("shm_ring_claim", rc);
					memcpy(buf, m, n);
					rc = shm_ring_commit(&p, n);
					if (rc < 0) die("shm_ring_commit", rc);
				} else {
					rc = shm_ring_send(&p, m, n, -1);
					if (rc < 0) die("shm_ring_send", rc);
				}
			}
			rc = shm_ring_producer_close(&p);
			if (rc < 0) die("shm_ring_producer_close", rc);
		} else {
			uint64_t nprod = id;
			uint64_t *next = calloc(nprod ? (size_t)nprod : 1, sizeof *next);
			if (next == NULL) die("calloc", -ENOMEM);
			uint64_t total = 0;
			shm_ring_consumer c;
			rc = shm_ring_consumer_attach(&r, &c, 0);
			if (rc < 0) die("shm_ring_consumer_attach", rc);
			for (;;) {
				const unsigned char *msg;
				size_t n;
				if (zc) {
					const void *v;
					rc = shm_ring_read(&c, &v, &n, -1);
					msg = v;
				} else {
					int64_t l = shm_ring_receive(&c, got, (size_t)maxlen, -1);
					rc = l < 0 ? (int)l : 0;
					n = l < 0 ? 0 : (size_t)l;
					msg = got;
				}
				if (rc == SHM_EOF) break;
				if (rc == SHM_EPEERDEAD) {
					printf("peer-dead\n");
					fflush(stdout);
					continue;
				}
				if (rc < 0) die(zc ? "shm_ring_read" : "shm_ring_receive", rc);
				if (n < 16) {
					fprintf(stderr, "ringpeer: short message of %zu bytes\n", n);
					exit(1);
				}
				uint32_t pp = (uint32_t)msg[0] | (uint32_t)msg[1] << 8 | (uint32_t)msg[2] << 16 | (uint32_t)msg[3] << 24;
				uint64_t k = 0;
				for (int i = 0; i < 8; i++) k |= (uint64_t)msg[8 + i] << (8 * i);
				if (pp >= nprod || k != next[pp] || n != message(m, pp, k, seed, maxlen) || memcmp(msg, m, n) != 0) {
					fprintf(stderr, "bad message p=%u k=%llu want k=%lld\n", pp, (unsigned long long)k,
					        pp < nprod ? (long long)next[pp] : -1ll);
					exit(1);
				}
				if (zc) {
					rc = shm_ring_release(&c);
					if (rc < 0) die("shm_ring_release", rc);
				}
				next[pp]++;
				total++;
			}
			for (uint64_t i = 0; i < nprod; i++) {
				if (next[i] != count) {
					fprintf(stderr, "short: producer %llu sent %llu\n", (unsigned long long)i, (unsigned long long)next[i]);
					exit(1);
				}
			}
			rc = shm_ring_consumer_close(&c);
			if (rc < 0) die("shm_ring_consumer_close", rc);
			free(next);
			printf("ok %llu\n", (unsigned long long)total);
			fflush(stdout);
		}
		rc = shm_ring_close(&r);
		if (rc < 0) die("shm_ring_close", rc);
		free(m);
		free(got);
	} else if (strcmp(cmd, "hold-consumer") == 0 || strcmp(cmd, "hold-producer") == 0) {
		shm_ring_producer p;
		shm_ring_consumer c;
		rc = shm_ring_open(&r, name);
		if (rc < 0) die("shm_ring_open", rc);
		if (strcmp(cmd, "hold-consumer") == 0)
			rc = shm_ring_consumer_attach(&r, &c, 0);
		else
			rc = shm_ring_producer_attach(&r, &p, 0);
		if (rc < 0) die("attach", rc);
		printf("ready\n");
		fflush(stdout);
		for (;;) sleep(1);
	} else {
		fprintf(stderr, "unknown command %s\n", cmd);
		return 2;
	}
	return 0;
}
