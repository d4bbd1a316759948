/* Conformance peer for SPEC.md, built from c/shm.h alone. Driven by
 * interop_c_test.go and python/tests; every role prints one result line.
 *
 * Test segment layout (the tests' own protocol, version 1):
 *   0  Mutex (layout 2)        8  uint64 counter, guarded by the Mutex
 *   16 Semaphore (layout 1)    24 uint64 sum of values consumed
 *   32 uint64 slot for the value in flight (guarded by the Mutex)
 */
#include "../shm.h"

#include <stdlib.h>
#include <sys/un.h>

#ifndef SOCK_CLOEXEC /* macOS */
#define SOCK_CLOEXEC 0
#endif

#define MU(p) ((shm_mutex *)(void *)((char *)(p) + 0))
#define CTR(p) ((uint64_t *)(void *)((char *)(p) + 8))
#define SEM(p) ((shm_sem *)(void *)((char *)(p) + 16))

static void die(const char *what, int rc) {
	fprintf(stderr, "peer: %s: %s (%d)\n", what, shm_strerror(rc), rc);
	exit(1);
}

static void open_seg(shm_seg *s, const char *name) {
	int r = shm_seg_open(s, name, 0, 0);
	if (r < 0) die("shm_seg_open", r);
}

static int connect_to(const char *path) {
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) die("socket", -errno);
	struct sockaddr_un a;
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect", -errno);
	return fd;
}

static void line(const char *s) {
	printf("%s\n", s);
	fflush(stdout);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: peer ROLE ...\n");
		return 2;
	}
	const char *role = argv[1];
	shm_seg s;
	if (strcmp(role, "token") == 0) {
		printf("%llu\n", (unsigned long long)shm_token());
		return 0;
	}
	if (strcmp(role, "create") == 0 && argc == 4) { /* create NAME SIZE, close, keep the name */
		int r = shm_seg_create(&s, argv[2], (size_t)atoll(argv[3]), 0600);
		if (r < 0) die("shm_seg_create", r);
		shm_seg_close(&s);
		line("created");
		return 0;
	}
	if (strcmp(role, "open") == 0 && argc == 3) { /* open NAME: prints ok or the error */
		int r = shm_seg_open(&s, argv[2], 0, 0);
		if (r < 0) {
			printf("error %d\n", -r);
			return 0;
		}
		printf("ok %zu\n", s.size);
		shm_seg_close(&s);
		return 0;
	}
	if (strcmp(role, "count") == 0 && argc == 4) { /* count NAME N */
		open_seg(&s, argv[2]);
		long n = atol(argv[3]);
		for (long i = 0; i < n; i++) {
			int r = shm_mutex_lock(&s, MU(s.addr));
			if (r < 0) die("lock", r);
			(*CTR(s.addr))++;
			r = shm_mutex_unlock(MU(s.addr));
			if (r < 0) die("unlock", r);
		}
		shm_seg_close(&s);
		line("done");
		return 0;
	}
	if (strcmp(role, "hold") == 0 && argc == 3) { /* hold NAME: lock, then sleep until killed */
		open_seg(&s, argv[2]);
		int r = shm_mutex_lock(&s, MU(s.addr));
		if (r < 0) die("lock", r);
		printf("locked %llu\n", (unsigned long long)shm_token());
		fflush(stdout);
		for (;;) pause();
	}
	if (strcmp(role, "lockwait") == 0 && argc == 4) { /* lockwait NAME TIMEOUT_MS */
		open_seg(&s, argv[2]);
		line("waiting");
		int r = shm_mutex_timedlock(&s, MU(s.addr), atoll(argv[3]) * 1000000LL);
		if (r == SHM_OWNERDEAD) line("ownerdead");
		else if (r == 0) line("ok");
		else if (r == -ETIMEDOUT) line("timeout");
		else die("timedlock", r);
		if (r >= 0 && (r = shm_mutex_unlock(MU(s.addr))) < 0) die("unlock", r);
		shm_seg_close(&s);
		return 0;
	}
	if (strcmp(role, "post") == 0 && argc == 4) { /* post NAME N */
		open_seg(&s, argv[2]);
		long n = atol(argv[3]);
		for (long i = 0; i < n; i++) {
			int r = shm_sem_post(SEM(s.addr));
			if (r < 0) die("post", r);
		}
		shm_seg_close(&s);
		line("posted");
		return 0;
	}
	if (strcmp(role, "take") == 0 && argc == 4) { /* take NAME N: wait N times, 10 s each */
		open_seg(&s, argv[2]);
		long n = atol(argv[3]);
		for (long i = 0; i < n; i++) {
			int r = shm_sem_timedwait(SEM(s.addr), 10000000000LL);
			if (r < 0) die("timedwait", r);
		}
		int r = shm_sem_trywait(SEM(s.addr));
		if (r != -EAGAIN) die("trywait after the last (want -EAGAIN)", r);
		shm_seg_close(&s);
		printf("took %ld\n", n);
		return 0;
	}
	if (strcmp(role, "alive") == 0 && argc == 4) { /* alive NAME TOKEN */
		open_seg(&s, argv[2]);
		printf("alive %d\n", shm_peer_alive(&s, strtoull(argv[3], NULL, 10)));
		shm_seg_close(&s);
		return 0;
	}
	if (strcmp(role, "send") == 0 && argc == 4) { /* send SOCK NAME: send, wait for the peer's byte */
		open_seg(&s, argv[3]);
		int fd = connect_to(argv[2]);
		int r = shm_send_segment(fd, &s);
		if (r < 0) die("send", r);
		char b;
		if (read(fd, &b, 1) != 1) die("read ack", -EIO);
		printf("sent; counter %llu\n", (unsigned long long)*CTR(s.addr));
		shm_seg_close(&s);
		return 0;
	}
	if (strcmp(role, "recv") == 0 && argc == 3) { /* recv SOCK: receive, add 1 under the Mutex */
		int fd = connect_to(argv[2]);
		int r = shm_recv_segment(fd, &s, 0, 0);
		if (r < 0) die("recv", r);
		if (s.addr == NULL) die("recv: end of file", -EIO);
		if ((r = shm_mutex_lock(&s, MU(s.addr))) < 0) die("lock", r);
		(*CTR(s.addr))++;
		shm_mutex_unlock(MU(s.addr));
		printf("received %zu readonly %d presence %d\n", s.size, s.readonly, s.presence >= 0);
		fflush(stdout);
		char b = 1;
		if (write(fd, &b, 1) != 1) die("write ack", -EIO);
		shm_seg_close(&s);
		return 0;
	}
	fprintf(stderr, "peer: unknown role or arguments: %s\n", role);
	return 2;
}
