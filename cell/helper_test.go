package cell

// Test harness: a second real process is this test binary re-executed in a
// role registered in children (see internal/childtest).

import (
	"testing"

	"github.com/mindmeld-go/shm"
	"github.com/mindmeld-go/shm/internal/childtest"
)

var children = map[string]func(args []string) int{}

var harness = childtest.New("celltest", shm.Unlink, children)

func TestMain(m *testing.M) { harness.Main(m) }

func testName(t testing.TB) string { return harness.Name(t) }

// beginStore does the first half of Store and stops, as a writer killed
// between W2 and W4 would.
func (c *Cell[T]) beginStore() {
	c.h.writer.Store(c.tok)
	if s := c.h.seq.Load(); s&1 == 0 {
		c.h.seq.Store(s + 1)
	}
}
