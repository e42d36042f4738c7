package fnspec_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ignis-run/ignis/internal/fnspec"
)

// full is a Spec with every field set, so a field the JSON encoding drops
// or mangles shows up in the round trip.
func full() fnspec.Spec {
	return fnspec.Spec{
		FunctionName: "my-function",
		FunctionARN:  "arn:aws:lambda:us-east-1:000000000000:function:my-function",
		Version:      "7",
		Runtime:      "python3.12",
		Handler:      "app.lambda_handler",
		MemoryMB:     1769,
		Timeout:      15*time.Minute + 1500*time.Millisecond + 3*time.Nanosecond,
		EphemeralMB:  10240,
		Environment:  map[string]string{"TABLE": "orders", "EMPTY": "", "UNICODE": "é\u2028\"quoted\""},
		CodeSha256:   "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		InitType:     "provisioned-concurrency",
		Key:          "my-function:7",
	}
}

func TestSpec_JSON_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		spec fnspec.Spec
	}{
		{name: "full", spec: full()},
		{name: "zero", spec: fnspec.Spec{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var got fnspec.Spec
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.spec, got); diff != "" {
				t.Errorf("round trip through %s (-want +got):\n%s", b, diff)
			}
		})
	}
}

// TestSpec_JSON_FullIsFull keeps the round trip honest when a field is
// added: full must set it.
func TestSpec_JSON_FullIsFull(t *testing.T) {
	v := reflect.ValueOf(full())
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("full() leaves Spec.%s zero; set it so the round trip covers it", v.Type().Field(i).Name)
		}
	}
}
