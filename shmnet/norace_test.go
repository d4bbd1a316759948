//go:build !race

package shmnet_test

const raceEnabled = false
