//go:build linux

package main

// A/B comparison of two builds of the ring: shmbench -ab OTHER runs this
// binary's throughput table and OTHER's (a shmbench built at another
// commit) alternately, -rounds times each, and prints the medians of the
// ring rows and their ratios. A change's cost on the hot path is measured
// so, in one run, on the same machine at the same time:
//
//	git worktree add /tmp/base BASE && (cd /tmp/base && go build -o /tmp/shmbench-base ./cmd/shmbench)
//	go run ./cmd/shmbench -ab /tmp/shmbench-base -sizes 64 -rounds 7
//	git worktree remove /tmp/base
//
// Each side's ring figures are also given relative to the C baseline ring
// of the same table ("×C"), which cancels some of the machine's drift.

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

var (
	abPath = flag.String("ab", "", "compare with another shmbench binary: run both throughput tables alternately and print medians and ratios")
	rounds = flag.Int("rounds", 5, "with -ab: runs of each binary")
)

// abRow is one size's figures from a throughput table.
type abRow struct {
	ring, ringC, sealed, sealedC float64
}

// throughputColumns are the widths of the throughput table's columns (the
// Printf in run), and abColumns the ones abRow keeps: ring msg/s, ×C ring,
// sealed msg/s and sealed ×C.
var (
	throughputColumns = []int{8, 14, 10, 14, 14, 14, 14, 9, 9, 9, 10, 15, 10}
	abColumns         = []int{1, 9, 11, 12}
)

// parseThroughput returns the ring rows of a shmbench run's output, by size
// label ("64 B").
func parseThroughput(out string) (map[string]abRow, error) {
	rows := map[string]abRow{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "size") && strings.Contains(line, "ring msg/s"):
			in = true
			continue
		case strings.TrimSpace(line) == "":
			in = false
		}
		if !in {
			continue
		}
		var cols []string
		for i, off := 0, 0; i < len(throughputColumns); i++ {
			if off+throughputColumns[i] > len(line) {
				return nil, fmt.Errorf("short row %q", line)
			}
			cols = append(cols, strings.TrimSpace(line[off:off+throughputColumns[i]]))
			off += throughputColumns[i] + 1
		}
		var v [4]float64
		for i, c := range abColumns {
			x, err := parseSI(cols[c])
			if err != nil {
				return nil, fmt.Errorf("row %q: %v", line, err)
			}
			v[i] = x
		}
		rows[cols[0]] = abRow{v[0], v[1], v[2], v[3]}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no throughput rows in:\n%s", out)
	}
	return rows, nil
}

// parseSI parses a figure as si formats it ("32.70 M", "1.2 k", "7").
func parseSI(s string) (float64, error) {
	mult := 1.0
	if f := strings.Fields(s); len(f) == 2 {
		switch f[1] {
		case "k":
			mult = 1e3
		case "M":
			mult = 1e6
		default:
			return 0, fmt.Errorf("unit %q", f[1])
		}
		s = f[0]
	}
	x, err := strconv.ParseFloat(s, 64)
	return x * mult, err
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func runAB() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := os.Stat(*abPath); err != nil {
		return err
	}
	args := []string{"-sizes", *sizesArg, "-deaths", "0", "-batches", strconv.Itoa(*batches)}
	bins := [2]string{self, *abPath}
	var got [2][]map[string]abRow
	for i := range *rounds {
		for k := range 2 {
			b := (i + k) % 2 // alternate which runs first
			out, err := exec.Command(bins[b], args...).Output()
			if err != nil {
				return fmt.Errorf("%s: %w", bins[b], err)
			}
			rows, err := parseThroughput(string(out))
			if err != nil {
				return fmt.Errorf("%s: %w", bins[b], err)
			}
			got[b] = append(got[b], rows)
		}
	}
	fmt.Printf("shmbench -ab: A = %s, B = %s; nproc %d, %d runs each (alternating), best of %d batches per run; medians\n\n", self, *abPath, nprocs(), *rounds, *batches)
	fmt.Printf("%-8s %14s %14s %8s %9s %9s %8s %15s %15s %8s %9s %9s %8s\n", "size", "A ring msg/s", "B ring msg/s", "A/B", "A ×C", "B ×C", "A/B", "A sealed msg/s", "B sealed msg/s", "A/B", "A ×C", "B ×C", "A/B")
	for _, size := range strings.Split(*sizesArg, ",") {
		n, _ := strconv.Atoi(size)
		label := sizeName(n)
		var col [2][4][]float64
		for b := range 2 {
			for _, rows := range got[b] {
				r, ok := rows[label]
				if !ok {
					return fmt.Errorf("%s: no row for %s", bins[b], label)
				}
				for j, x := range []float64{r.ring, r.ringC, r.sealed, r.sealedC} {
					col[b][j] = append(col[b][j], x)
				}
			}
		}
		var m [2][4]float64
		for b := range 2 {
			for j := range 4 {
				m[b][j] = median(col[b][j])
			}
		}
		fmt.Printf("%-8s %14s %14s %8.3f %9.2f %9.2f %8.3f %15s %15s %8.3f %9.2f %9.2f %8.3f\n", label,
			si(m[0][0]), si(m[1][0]), m[0][0]/m[1][0], m[0][1], m[1][1], m[0][1]/m[1][1],
			si(m[0][2]), si(m[1][2]), m[0][2]/m[1][2], m[0][3], m[1][3], m[0][3]/m[1][3])
	}
	return nil
}
