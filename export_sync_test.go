package shm

import (
	"fmt"
	"os"
)

// Child roles for the examples in example_sync_test.go, which live in the
// external test package and cannot reach children directly. They are set
// by that file's init through these hooks.
var exampleCounter func(name string, n int) error
var exampleProduce func(name string, n int) error

func init() {
	children["example-counter"] = func(args []string) int {
		if err := exampleCounter(args[0], 10000); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	children["example-producer"] = func(args []string) int {
		if err := exampleProduce(args[0], 100); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
}

// SetExampleChildren lets the external test package register the example
// child functions.
func SetExampleChildren(counter, produce func(name string, n int) error) {
	exampleCounter, exampleProduce = counter, produce
}
