module github.com/mindmeld-go/shm/shmnet/interop

go 1.26.0

require (
	github.com/mindmeld-go/shm v0.0.0
	golang.org/x/net v0.62.0
)

require golang.org/x/sys v0.50.0 // indirect

replace github.com/mindmeld-go/shm => ../..
