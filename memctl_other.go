//go:build !linux && !darwin && !freebsd

package shm

import "errors"

func sysMlock(b []byte) error                   { return errors.ErrUnsupported }
func sysMunlock(b []byte) error                 { return errors.ErrUnsupported }
func sysAdvise(b []byte, a Advice) error        { return errors.ErrUnsupported }
func sysPopulate(b []byte, readOnly bool) error { return errors.ErrUnsupported }
func sysMincore(b []byte, vec []byte) error     { return errors.ErrUnsupported }
