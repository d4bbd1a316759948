/* Ring peer for tests, built from c/shm.h alone, with the command line of
 * python/tests/ringpeer.py; driven by ring/interop_c_test.go.
 *
 *   create NAME CAP MAXMSG NSLOTS | unlink NAME
 *   produce NAME ID COUNT SEED MAXLEN [MODE] [pause-after K]
 *   consume NAME NPROD COUNT SEED MAXLEN [MODE] [pause-after K] [from K]
 *   hold-consumer NAME | hold-producer NAME            (prints "ready", sleeps)
 *   check NAME                  (opens, attaches a consumer, reads one message)
 *   garbage NAME KIND           (writes a bad record at T and publishes it)
 *
 * MODE, pause-after, from, the output lines and the garbage kinds are those
 * of internal/ringpeer (see its doc comment). Errors name the shm.h code:
 * "ringpeer: shm_ring_open: <shm_strerror> (SHM_ENOTRING)", exit status 1.
 */
#include "../shm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *rcname(int rc) {
	switch (rc) {
	case SHM_ECORRUPT: return "SHM_ECORRUPT";
	case SHM_ENOTRING: return "SHM_ENOTRING";
	case SHM_ETOOLARGE: return "SHM_ETOOLARGE";
	case SHM_EPEERDEAD: return "SHM_EPEERDEAD";
	case SHM_EPEERCLOSED: return "SHM_EPEERCLOSED";
	case SHM_EOF: return "SHM_EOF";
	case -EBUSY: return "EBUSY";
	case -ETIMEDOUT: return "ETIMEDOUT";
	case -EAGAIN: return "EAGAIN";
	}
	return "errno";
}

static void die(const char *what, int rc) {
	fprintf(stderr, "ringpeer: %s: %s (%s, %d)\n", what, shm_strerror(rc), rcname(rc), rc);
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

/* opts are the optional arguments of produce and consume. */
typedef struct {
	int mode; /* 0 copy, 1 zerocopy, 2 mixed */
	uint64_t pause, from;
} opts;

static void usage(void);

static opts parse_opts(int argc, char **argv, int i) {
	opts o = {0, 0, 0};
	for (; i < argc; i++) {
		if (strcmp(argv[i], "copy") == 0) o.mode = 0;
		else if (strcmp(argv[i], "zerocopy") == 0) o.mode = 1;
		else if (strcmp(argv[i], "mixed") == 0) o.mode = 2;
		else if ((strcmp(argv[i], "pause-after") == 0 || strcmp(argv[i], "from") == 0) && i + 1 < argc) {
			if (argv[i][0] == 'p') o.pause = num(argv[i + 1]);
			else o.from = num(argv[i + 1]);
			i++;
		} else usage();
	}
	return o;
}

/* in_place: message k goes by claim or read. */
static int in_place(const opts *o, uint64_t k) { return o->mode == 1 || (o->mode == 2 && k % 2 == 1); }

/* pause_at prints "paused K" and sleeps until killed if k is the pause-after count. */
static void pause_at(const opts *o, uint64_t k) {
	if (o->pause == 0 || k != o->pause) return;
	printf("paused %llu\n", (unsigned long long)k);
	fflush(stdout);
	for (;;) sleep(1);
}

static void usage(void) {
	fprintf(stderr, "usage: ringpeer create NAME CAP MAXMSG NSLOTS | unlink NAME |\n"
	                "  produce NAME ID COUNT SEED MAXLEN [copy|zerocopy|mixed] [pause-after K] |\n"
	                "  consume NAME NPROD COUNT SEED MAXLEN [copy|zerocopy|mixed] [pause-after K] [from K] |\n"
	                "  hold-consumer NAME | hold-producer NAME | check NAME |\n"
	                "  garbage NAME long|past|short|type|negative\n");
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
		if (argc < 7) usage();
		uint64_t id = num(argv[3]), count = num(argv[4]), seed = num(argv[5]), maxlen = num(argv[6]);
		opts o = parse_opts(argc, argv, 7);
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
				pause_at(&o, k);
				size_t n = message(m, (uint32_t)id, k, seed, maxlen);
				if (in_place(&o, k)) {
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
			for (uint64_t i = 0; i < nprod; i++) next[i] = o.from;
			uint64_t total = 0, deaths = 0;
			shm_ring_consumer c;
			rc = shm_ring_consumer_attach(&r, &c, 0);
			if (rc < 0) die("shm_ring_consumer_attach", rc);
			for (;;) {
				const unsigned char *msg;
				size_t n;
				pause_at(&o, total);
				int zc = in_place(&o, total);
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
					printf("peer-dead %llu\n", (unsigned long long)total);
					fflush(stdout);
					deaths++;
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
			int short_ = 0;
			for (uint64_t i = 0; i < nprod; i++) short_ |= next[i] != count;
			if (short_) {
				FILE *f = deaths ? stdout : stderr;
				fprintf(f, deaths ? "ended" : "ringpeer: short: messages per producer");
				for (uint64_t i = 0; i < nprod; i++) fprintf(f, " %llu", (unsigned long long)(next[i] - o.from));
				fprintf(f, "\n");
				if (!deaths) exit(1);
			} else {
				printf("ok %llu\n", (unsigned long long)total);
			}
			fflush(stdout);
			rc = shm_ring_consumer_close(&c);
			if (rc < 0) die("shm_ring_consumer_close", rc);
			free(next);
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
	} else if (strcmp(cmd, "check") == 0) {
		shm_ring_consumer c;
		rc = shm_ring_open(&r, name);
		if (rc < 0) die("shm_ring_open", rc);
		rc = shm_ring_consumer_attach(&r, &c, 0);
		if (rc < 0) die("shm_ring_consumer_attach", rc);
		const void *v;
		size_t n;
		rc = shm_ring_read(&c, &v, &n, 1000000000);
		if (rc == -ETIMEDOUT) {
			printf("empty\n");
		} else if (rc < 0) {
			die("shm_ring_read", rc);
		} else {
			printf("ok %zu\n", n);
			rc = shm_ring_release(&c);
			if (rc < 0) die("shm_ring_release", rc);
		}
		rc = shm_ring_consumer_close(&c);
		if (rc < 0) die("shm_ring_consumer_close", rc);
		rc = shm_ring_close(&r);
		if (rc < 0) die("shm_ring_close", rc);
	} else if (strcmp(cmd, "garbage") == 0) {
		/* Through the mapping's bytes, not the ring calls: a stranger's write. */
		if (argc != 4) usage();
		rc = shm_ring_open(&r, name);
		if (rc < 0) die("shm_ring_open", rc);
		if (shm_ring_multi_producer(&r)) {
			fprintf(stderr, "ringpeer: garbage: not a single-producer ring\n");
			exit(1);
		}
		const char *kind = argv[3];
		int32_t length, type = 1;
		uint64_t step = 16;
		if (strcmp(kind, "long") == 0) {
			length = (int32_t)(shm_ring_max_message(&r) + 16);
			step = ((uint64_t)length + 7) & ~7ull;
		} else if (strcmp(kind, "past") == 0) length = 1000;
		else if (strcmp(kind, "short") == 0) length = 4;
		else if (strcmp(kind, "type") == 0) length = 16, type = 7;
		else if (strcmp(kind, "negative") == 0) length = -16;
		else usage();
		uint64_t cap = shm_ring_capacity(&r);
		_Atomic uint64_t *tail = (_Atomic uint64_t *)(void *)(r.base + 64);
		uint64_t t = atomic_load(tail);
		if (cap - (t & (cap - 1)) < step) {
			fprintf(stderr, "ringpeer: garbage: no room before the end of the data area\n");
			exit(1);
		}
		uint64_t w = (uint64_t)(uint32_t)length | (uint64_t)(uint32_t)type << 32;
		memcpy(r.data + (t & (cap - 1)), &w, sizeof w);
		atomic_store(tail, t + step);
		rc = shm_ring_close(&r);
		if (rc < 0) die("shm_ring_close", rc);
		printf("ok\n");
	} else {
		fprintf(stderr, "unknown command %s\n", cmd);
		return 2;
	}
	return 0;
}
