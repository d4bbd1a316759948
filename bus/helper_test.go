package bus

// Test harness: a second real process is this test binary re-executed in a
// role registered in children (see internal/childtest).

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

var children = map[string]func(args []string) int{}

var harness = childtest.New("bustest", shm.Unlink, children)

func TestMain(m *testing.M) { harness.Main(m) }

func testName(t testing.TB) string { return harness.Name(t) }

// msgSize is the size of test message n: 8 to max bytes, spread by a hash.
func msgSize(n uint64, max int) int {
	x := n * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return 8 + int(x%uint64(max-7))
}

// fill writes test message n into buf, which must be msgSize long: its
// number, then bytes derived from it.
func fill(buf []byte, n uint64) {
	binary.LittleEndian.PutUint64(buf, n)
	for i := 8; i < len(buf); i++ {
		buf[i] = byte(n) + byte(i)
	}
}

// verify checks that msg is test message want.
func verify(msg []byte, want uint64, max int) error {
	if len(msg) != msgSize(want, max) {
		return fmt.Errorf("message %d: %d bytes, want %d", want, len(msg), msgSize(want, max))
	}
	if got := binary.LittleEndian.Uint64(msg); got != want {
		return fmt.Errorf("message number %d, want %d", got, want)
	}
	for i := 8; i < len(msg); i++ {
		if msg[i] != byte(want)+byte(i) {
			return fmt.Errorf("message %d: byte %d is %#x, want %#x", want, i, msg[i], byte(want)+byte(i))
		}
	}
	return nil
}
