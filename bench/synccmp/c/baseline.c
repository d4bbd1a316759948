/* C baselines for synccmp: a PTHREAD_PROCESS_SHARED mutex and process-shared
 * POSIX semaphores in a shm_open segment, two processes (fork).
 * usage: baseline uncontended|contend|pingpong N NAME
 * prints nanoseconds per operation (per lock/unlock pair, per round trip). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
	pthread_mutex_t mu;
	sem_t a, b;
	atomic_int ready, go;
	long counter;
};

static long long now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 4) { fprintf(stderr, "usage: baseline mode N name\n"); return 2; }
	const char *mode = argv[1];
	long n = atol(argv[2]);
	int fd = shm_open(argv[3], O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) { perror("shm_open"); return 1; }
	if (ftruncate(fd, 4096) < 0) { perror("ftruncate"); return 1; }
	struct shared *s = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED) { perror("mmap"); return 1; }
	shm_unlink(argv[3]);
	close(fd);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&s->mu, &ma);
	sem_init(&s->a, 1, 0);
	sem_init(&s->b, 1, 0);

	if (strcmp(mode, "uncontended") == 0) {
		long long t0 = now();
		for (long i = 0; i < n; i++) { pthread_mutex_lock(&s->mu); pthread_mutex_unlock(&s->mu); }
		printf("%.2f\n", (double)(now() - t0) / n);
		return 0;
	}
	int contend = strcmp(mode, "contend") == 0;
	pid_t pid = fork();
	if (pid == 0) {
		atomic_fetch_add(&s->ready, 1);
		while (!atomic_load(&s->go)) ;
		for (long i = 0; i < n; i++) {
			if (contend) { pthread_mutex_lock(&s->mu); s->counter++; pthread_mutex_unlock(&s->mu); }
			else { sem_wait(&s->a); sem_post(&s->b); }
		}
		_exit(0);
	}
	while (!atomic_load(&s->ready)) ;
	long long t0 = now();
	atomic_store(&s->go, 1);
	for (long i = 0; i < n; i++) {
		if (contend) { pthread_mutex_lock(&s->mu); s->counter++; pthread_mutex_unlock(&s->mu); }
		else { sem_post(&s->a); sem_wait(&s->b); }
	}
	int st;
	waitpid(pid, &st, 0);
	long long el = now() - t0;
	if (contend && s->counter != 2 * n) { fprintf(stderr, "counter %ld\n", s->counter); return 1; }
	printf("%.2f\n", contend ? (double)el / (2 * n) : (double)el / n);
	return 0;
}
