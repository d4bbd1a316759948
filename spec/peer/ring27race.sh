#!/bin/bash
# ring27race.sh: shows notes/specpeer.md gap 1 (RING-27 loads T once, before
# the liveness checks). It builds two variants of specpeer.c with a 20 ms
# delay injected into the reap (a scheduling delay any process can suffer)
# and a reap every 1000 reads: "literal" loads T once before the checks, as
# RING-27 says; "fixed" loads it per dead slot after its check, as
# specpeer.c does. A Go producer on a 16 MiB multi-producer ring is
# SIGKILLed 20-70 ms in; a consumer that has not ended 15 s later is stuck.
# Run from the repository root: spec/peer/ring27race.sh [RUNS]
set -eu
runs=${1:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/goringpeer" ./internal/ringpeer
python3 - spec/peer/specpeer.c "$dir" <<'PY'
import sys
src, out = sys.argv[1], sys.argv[2]
s = open(src).read()
loop = '''	int pending = 0;
	uint64_t dead = 0;
	for (uint32_t i = 0; i < r->S; i++) {
		uint64_t tok = ld(slot64(r, i, S_TOKEN));
		if (tok == 0 || alive(&r->seg, tok))
			continue;
		uint64_t t = ld(h64(r, H_TAIL));
'''
assert loop in s
read = '''	for (;;) {
		int res = cons_poll(c, buf, cap, n);'''
assert read in s
s = s.replace(read, '''	static unsigned long nreads;
	if (++nreads % 1000 == 0 && reap(c) != RES_OK)
		return RES_CORRUPT;
''' + read)
lit = s.replace(loop, loop.replace('''	for (uint32_t i''', '''	uint64_t t = ld(h64(r, H_TAIL));
	sleep_ns(20000000);
	for (uint32_t i''').replace('''		uint64_t t = ld(h64(r, H_TAIL));
''', ''))
fix = s.replace(loop, loop.replace('''	for (uint32_t i''', '''	sleep_ns(20000000);
	for (uint32_t i'''))
open(out + '/literal.c', 'w').write(lit)
open(out + '/fixed.c', 'w').write(fix)
PY
for v in literal fixed; do
	gcc -std=c11 -O2 -o "$dir/$v" "$dir/$v.c"
	stuck=0
	for i in $(seq "$runs"); do
		n=/ring27race-$$-$v-$i
		"$dir/goringpeer" create "$n" 16777216 256 2
		"$dir/$v" consume "$n" 1 100000000 3 256 >/dev/null 2>&1 &
		c=$!
		"$dir/goringpeer" produce "$n" 0 100000000 3 256 &
		p=$!
		sleep 0.0$((RANDOM % 6 + 2))
		kill -9 "$p"
		wait "$p" 2>/dev/null || true
		for _ in $(seq 150); do kill -0 "$c" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$c" 2>/dev/null; then
			stuck=$((stuck + 1))
			kill -9 "$c"
		fi
		wait "$c" 2>/dev/null || true
		"$dir/goringpeer" unlink "$n"
	done
	echo "$v: $stuck of $runs consumers stuck"
done
