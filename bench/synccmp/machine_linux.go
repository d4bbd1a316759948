package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// machineLoad returns a function that describes what else the machine did
// since machineLoad was called: the load average at the start and the
// share of CPU time the hypervisor gave to others (steal), from
// /proc/loadavg and /proc/stat (proc(5)). On a shared VM these, not the
// code measured, set the tail of a latency distribution.
func machineLoad() func() string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			load = f[0]
		}
	}
	steal0, total0 := cpuTicks()
	return func() string {
		steal1, total1 := cpuTicks()
		s := "load average " + load + " at the start"
		if total1 > total0 {
			s += fmt.Sprintf(", %.1f%% of CPU time stolen by the hypervisor", 100*float64(steal1-steal0)/float64(total1-total0))
		}
		return s
	}
}

// cpuTicks returns the steal and total ticks of all CPUs.
func cpuTicks() (steal, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:9] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i == 7 {
			steal = n
		}
	}
	return steal, total
}
