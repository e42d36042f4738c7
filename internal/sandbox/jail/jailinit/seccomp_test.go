package jailinit

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestSeccompProgram_WellFormed checks what the kernel would only report
// at sandbox start: jumps stay inside the program, it ends in a return and
// fits the kernel's limit.
func TestSeccompProgram_WellFormed(t *testing.T) {
	p := seccompProgram()
	if len(p) > 4096 {
		t.Fatalf("%d instructions, above BPF_MAXINSNS", len(p))
	}
	for i, ins := range p {
		if ins.Code&0x07 == unix.BPF_JMP && i+1+int(max(ins.Jt, ins.Jf)) >= len(p) {
			t.Errorf("instruction %d jumps past the end", i)
		}
	}
	if last := p[len(p)-1]; last.Code != unix.BPF_RET|unix.BPF_K || last.K != retAllow {
		t.Errorf("last instruction %+v, want ret ALLOW", last)
	}
}
