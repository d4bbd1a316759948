//go:build !amd64 || race

package seqcopy

const plainStores = false
