// Command xlangbench measures the ring across languages in one run: 64 B
// message throughput between two processes for the C baseline ring of
// cmd/shmbench, c/shm.h's ring from C to C, package ring from Go to Go,
// Go to C and C to Go, and prints the ratios issue 9 sets as targets:
//
//	go run ./cmd/xlangbench [-n 2000000] [-batches 3] [-size 64] [-json]
//	                        [-python PATH [-python-n 300000] [-python-n-1mib 2000]]
//
// Run it from the repository (or pass -repo): it builds two C programs with
// gcc -O2 at run time, reading their sources from the repository rather
// than embedding them, so that they are the files the rest of the module
// tests: cmd/shmbench/c/baseline.c (the baseline, unchanged) and
// cmd/xlangbench/c/ringbench.c, the C end, compiled with -I REPO/c against
// c/shm.h.
//
// Every ring row copies in and copies out: Send and Receive in Go,
// shm_ring_send and shm_ring_receive in C, memcpy into and out of the ring
// in the baseline. The Go side creates each ring (8 MiB, one producer); a
// consumer process attaches and says it is ready, then a producer process
// sends. The figure is the consumer's, from its first message to its last,
// and each row is the best of its batches, the rows taking turns within a
// batch: interference on a shared machine mostly adds time. The median of
// each row's batches, and the ratios of the medians, are printed beside the
// best ones for reference: the C baseline, a spin without pause, swings
// most from batch to batch (on the 2-vCPU VM of notes/xlangbench.md by
// 2× and more between the batches of one run).
//
// With -python, a python3 that imports the shm package (and numpy) also
// runs python/bench/pybench.py each batch, adding its rows: 64 B Python to
// Python through shm.Ring against multiprocessing.Queue and Pipe, and 1 MiB
// Python to Go through the ring against a Unix socket, the Python side
// filling each message where it is sent from (see pybench.py). The Go end
// of those is internal/ringpeer, built with go build.
//
// The command removes its segments, its temporary files and its child
// processes on every exit, also on Ctrl-C. It runs on Linux only.
package main
