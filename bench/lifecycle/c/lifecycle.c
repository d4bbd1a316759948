/* The C side of go run ./bench/lifecycle: one segment lifecycle (create,
   size, map, unmap, close, unlink) made with a chosen set of calls.

   usage: lifecycle VARIANT SIZE NAME
   Reads a count N per line on standard input, runs N cycles on NAME
   (without a leading slash), prints the elapsed nanoseconds, and exits at
   the end of input. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *variant, *name;
static long size;
static char path[512], tmppath[512];

static void die(const char *what) {
	fprintf(stderr, "lifecycle %s: %s: %s\n", variant, what, strerror(errno));
	exit(1);
}

/* presence is the OFD lock byte every writable mapping holds (README,
   "Liveness"); the offset is fixed here, which is what the cost is. */
#define PRESENCE_OFF ((off_t)1 << 62)

static void map_and_release(int fd, int presence) {
	long n = size;
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) die("mmap");
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = PRESENCE_OFF, .l_len = 1};
	if (presence && fcntl(fd, F_OFD_SETLK, &lk) < 0) die("fcntl F_OFD_SETLK");
	lk.l_type = F_UNLCK;
	if (presence && fcntl(fd, F_OFD_SETLK, &lk) < 0) die("fcntl F_OFD_SETLK unlock");
	if (munmap(p, n) < 0) die("munmap");
	if (close(fd) < 0) die("close");
}

/* Guards that a variant keeps. */
enum {
	G_TMPFILE = 1,   /* O_TMPFILE + linkat: publish fully sized */
	G_FCHMOD = 2,    /* exact permission, whatever the umask */
	G_FALLOCATE = 4, /* reserve the memory: ENOSPC now, not SIGBUS later */
	G_TMPNAME = 8,   /* temporary name + link + unlink (the fallback) */
	G_PRESENCE = 16, /* the liveness lock: F_OFD_SETLK at map, unlock at close */
};

/* guarded makes the calls our Linux Create makes (shm_linux.go sysCreate,
   shm_unix.go create, segment.go newSegment; no fstat: the size is known), less the guards not in
   g; then Close (munmap, close) and Unlink (unlink). */
static void guarded(int g) {
	int fd;
	if (g & G_TMPFILE) {
		fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0) die("open O_TMPFILE");
	} else if (g & G_TMPNAME) {
		fd = open(tmppath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) die("open tmp");
	} else {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) die("open");
	}
	if ((g & G_FCHMOD) && fchmod(fd, 0600) < 0) die("fchmod");
	if (g & G_FALLOCATE) {
		if (fallocate(fd, 0, 0, size) < 0) die("fallocate");
	} else if (ftruncate(fd, size) < 0) die("ftruncate");
	if (g & G_TMPFILE) {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0) die("linkat");
	} else if (g & G_TMPNAME) {
		if (link(tmppath, path) < 0) die("link");
		if (unlink(tmppath) < 0) die("unlink tmp");
	}
	map_and_release(fd, g & G_PRESENCE);
	if (unlink(path) < 0) die("unlink");
}

/* minimal is the lecture's Process A: shm_open, ftruncate, mmap; then
   munmap, close, shm_unlink. */
static void minimal(void) {
	int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
	if (fd < 0) die("shm_open");
	if (ftruncate(fd, size) < 0) die("ftruncate");
	map_and_release(fd, 0);
	if (shm_unlink(name) < 0) die("shm_unlink");
}

static const struct {
	const char *name;
	int guards; /* -1: minimal */
} variants[] = {
	{"same", G_TMPFILE | G_FCHMOD | G_FALLOCATE | G_PRESENCE},
	{"minimal", -1},
	{"no-presence", G_TMPFILE | G_FCHMOD | G_FALLOCATE},
	{"no-fallocate", G_TMPFILE | G_FCHMOD | G_PRESENCE},
	{"no-fchmod", G_TMPFILE | G_FALLOCATE | G_PRESENCE},
	{"no-tmpfile", G_FCHMOD | G_FALLOCATE | G_PRESENCE},
	{"tmpname-link", G_TMPNAME | G_FCHMOD | G_FALLOCATE | G_PRESENCE},
	{"open-ftruncate", 0},
};

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: lifecycle VARIANT SIZE NAME\n");
		return 2;
	}
	variant = argv[1];
	size = atol(argv[2]);
	name = argv[3];
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	snprintf(tmppath, sizeof tmppath, "/dev/shm/%s.tmp", name);
	int g = -2;
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
		if (strcmp(variants[i].name, variant) == 0) g = variants[i].guards;
	if (g == -2) {
		fprintf(stderr, "unknown variant %s\n", variant);
		return 2;
	}
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		long n = atol(line);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long i = 0; i < n; i++) {
			if (g == -1) minimal();
			else guarded(g);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
		fflush(stdout);
	}
	return 0;
}
