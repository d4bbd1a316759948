package childtest

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// ExpectEmulationEnv, when set to "1" or "0", states whether the tests run
// under emulation; TestEmulatedAsExpected then checks that Emulated agrees,
// so that a CI step whose detection broke fails instead of running tests
// unskipped (or skipping them natively). It changes nothing else.
const ExpectEmulationEnv = "SHM_EXPECT_EMULATION"

// Emulated reports whether this process runs under user-mode emulation
// (qemu-user through binfmt_misc): a Linux binary of one architecture on a
// kernel of another. It compares runtime.GOARCH with the kernel's own
// architecture, which qemu-user does not disguise: /proc/sys/kernel/arch
// (Linux 6.1 and later), or, on older kernels, the x86 "vendor_id" lines of
// /proc/cpuinfo, which qemu 7 passes through from an x86 host. uname(2) is no
// help: qemu-user answers it with the guest's machine ("aarch64").
func Emulated() bool { return emulation().emulated }

// KernelArch is the kernel's architecture as /proc/sys/kernel/arch gives it
// ("x86_64"), or "" where it cannot be read.
func KernelArch() string { return emulation().kernelArch }

// SkipIfEmulated skips t when it runs under user-mode emulation, saying why
// the test cannot run there.
func SkipIfEmulated(t testing.TB, why string) {
	t.Helper()
	if e := emulation(); e.emulated {
		t.Skipf("skipped under user-mode emulation (%s binary on a %s kernel): %s", runtime.GOARCH, e.kernelArch, why)
	}
}

type emulationInfo struct {
	emulated   bool
	kernelArch string
}

var emulation = sync.OnceValue(func() emulationInfo {
	if runtime.GOOS != "linux" {
		return emulationInfo{}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/arch"); err == nil {
		arch := strings.TrimSpace(string(b))
		return emulationInfo{emulated: !nativeArch(runtime.GOARCH, arch), kernelArch: arch}
	}
	// Before Linux 6.1: an x86 host shows through /proc/cpuinfo.
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "386" {
		if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && bytes.Contains(b, []byte("\nvendor_id\t")) {
			return emulationInfo{emulated: true, kernelArch: "x86"}
		}
	}
	return emulationInfo{}
})

// nativeArch reports whether a kernel of architecture arch (uname -m) runs
// binaries of goarch natively, 32-bit compatibility modes included. An
// architecture not listed is presumed native.
func nativeArch(goarch, arch string) bool {
	switch goarch {
	case "amd64":
		return arch == "x86_64"
	case "386":
		return arch == "x86_64" || (len(arch) == 4 && arch[0] == 'i' && strings.HasSuffix(arch, "86"))
	case "arm64":
		return arch == "aarch64" || arch == "aarch64_be" || arch == "arm64"
	case "arm":
		return strings.HasPrefix(arch, "arm") || arch == "aarch64"
	case "riscv64":
		return arch == "riscv64"
	case "loong64":
		return arch == "loongarch64"
	case "ppc64le":
		return arch == "ppc64le"
	case "ppc64":
		return arch == "ppc64"
	case "s390x":
		return arch == "s390x"
	}
	return true
}
