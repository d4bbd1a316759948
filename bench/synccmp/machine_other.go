//go:build !linux

package main

func machineLoad() func() string { return func() string { return "" } }
