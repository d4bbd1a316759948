package childtest

import (
	"os"
	"runtime"
	"testing"
)

// TestEmulatedAsExpected checks Emulated against what the environment says
// (SHM_EXPECT_EMULATION, set by .ci/run), so that skips meant only for
// emulation neither vanish under qemu nor happen natively.
func TestEmulatedAsExpected(t *testing.T) {
	t.Logf("GOARCH %s, kernel %q, emulated %v", runtime.GOARCH, KernelArch(), Emulated())
	switch want := os.Getenv(ExpectEmulationEnv); want {
	case "":
		t.Skipf("%s not set", ExpectEmulationEnv)
	case "1", "0":
		if got := Emulated(); got != (want == "1") {
			t.Errorf("Emulated() = %v on GOARCH %s, kernel arch %q; %s=%s", got, runtime.GOARCH, KernelArch(), ExpectEmulationEnv, want)
		}
	default:
		t.Fatalf("%s=%q, want 1 or 0", ExpectEmulationEnv, want)
	}
}

func TestNativeArch(t *testing.T) {
	for _, tc := range []struct {
		goarch, arch string
		want         bool
	}{
		{"amd64", "x86_64", true},
		{"386", "x86_64", true},
		{"386", "i686", true},
		{"arm64", "x86_64", false},
		{"arm64", "aarch64", true},
		{"amd64", "aarch64", false},
		{"riscv64", "x86_64", false},
		{"arm", "aarch64", true},
	} {
		if got := nativeArch(tc.goarch, tc.arch); got != tc.want {
			t.Errorf("nativeArch(%s, %s) = %v, want %v", tc.goarch, tc.arch, got, tc.want)
		}
	}
}
