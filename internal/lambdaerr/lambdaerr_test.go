package lambdaerr_test

import (
	"encoding/json"
	"testing"

	"github.com/ignis-run/ignis/internal/lambdaerr"
)

func TestBody(t *testing.T) {
	tests := []struct {
		name, errorType, message, want string
	}{
		{"timeout", lambdaerr.SandboxTimedout, "RequestId: 8f5a Error: Task timed out after 3.00 seconds",
			`{"errorMessage":"RequestId: 8f5a Error: Task timed out after 3.00 seconds","errorType":"Sandbox.Timedout"}`},
		{"empty message", lambdaerr.RuntimeUnknown, "", `{"errorMessage":"","errorType":"Runtime.Unknown"}`},
		{"quotes and backslash", lambdaerr.RuntimeExitError, `open "C:\tmp": no such file`,
			`{"errorMessage":"open \"C:\\tmp\": no such file","errorType":"Runtime.ExitError"}`},
		{"newlines and tab", lambdaerr.RuntimeExitError, "line one\nline two\r\n\tindented",
			`{"errorMessage":"line one\nline two\r\n\tindented","errorType":"Runtime.ExitError"}`},
		{"control character", lambdaerr.RuntimeExitError, "bell\x07", `{"errorMessage":"bell\u0007","errorType":"Runtime.ExitError"}`},
		{"unicode", lambdaerr.RuntimeExitError, "café ☕ 🔥", `{"errorMessage":"café ☕ 🔥","errorType":"Runtime.ExitError"}`},
		{"html characters and line separator", lambdaerr.RuntimeExitError, "<a> & b\u2028",
			`{"errorMessage":"\u003ca\u003e \u0026 b\u2028","errorType":"Runtime.ExitError"}`},
		{"invalid utf-8", lambdaerr.RuntimeExitError, "bad \xff byte", `{"errorMessage":"bad \ufffd byte","errorType":"Runtime.ExitError"}`},
		{"error type escaped too", `Odd"Type`, "m", `{"errorMessage":"m","errorType":"Odd\"Type"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lambdaerr.Body(tt.errorType, tt.message)
			if string(got) != tt.want {
				t.Errorf("Body(%q, %q)\n got %s\nwant %s", tt.errorType, tt.message, got, tt.want)
			}
			// Byte for byte what encoding/json writes for the same struct,
			// which is what the worker used to write.
			std, err := json.Marshal(struct {
				ErrorMessage string `json:"errorMessage"`
				ErrorType    string `json:"errorType"`
			}{tt.message, tt.errorType})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(std) {
				t.Errorf("Body differs from encoding/json\n got %s\n std %s", got, std)
			}
		})
	}
}

func TestBody_Allocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		_ = lambdaerr.Body(lambdaerr.SandboxTimedout, "RequestId: 8f5a Error: Task timed out after 3.00 seconds")
	})
	if n != 1 {
		t.Errorf("Body of plain ASCII: %v allocations, want 1", n)
	}
}
