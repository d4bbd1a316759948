//go:build amd64 && !race

package seqcopy

// plainStores: amd64 keeps stores in program order (Intel SDM vol. 3A
// §9.2.2, "stores are not reordered with other stores"), and the Go
// compiler does not move ordinary stores across sync/atomic calls.
const plainStores = true
