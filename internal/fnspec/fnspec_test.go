package fnspec_test

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
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
		Snapshot:     "my-function@7@0b7c3a5e-1111-4a2b-9c3d-0123456789ab",
		Network: fnspec.Network{Mode: fnspec.NetworkEgress, Allow: []fnspec.Allow{
			{Prefix: netip.MustParsePrefix("10.0.0.0/24"), PortLo: 5432, PortHi: 5433},
		}},
		Key: "my-function:7",
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
			if diff := cmp.Diff(tt.spec, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
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

func TestNetworkFromTags(t *testing.T) {
	tests := []struct {
		name    string
		tags    map[string]string
		want    fnspec.Network
		wantErr string
	}{
		{name: "no tags", tags: nil, want: fnspec.Network{}},
		{name: "egress", tags: map[string]string{fnspec.TagNetwork: "egress"}, want: fnspec.Network{}},
		{name: "none", tags: map[string]string{fnspec.TagNetwork: "none"}, want: fnspec.Network{Mode: fnspec.NetworkNone}},
		{name: "allow", tags: map[string]string{fnspec.TagNetworkAllow: " 10.0.0.5:5432 192.168.1.0/24:8000-8099  172.16.0.9/16 "},
			want: fnspec.Network{Allow: []fnspec.Allow{
				{Prefix: netip.MustParsePrefix("10.0.0.5/32"), PortLo: 5432, PortHi: 5432},
				{Prefix: netip.MustParsePrefix("192.168.1.0/24"), PortLo: 8000, PortHi: 8099},
				{Prefix: netip.MustParsePrefix("172.16.0.0/16")},
			}}},
		{name: "bad mode", tags: map[string]string{fnspec.TagNetwork: "vpc"}, wantErr: `must be "egress" or "none"`},
		{name: "allow with none", tags: map[string]string{fnspec.TagNetwork: "none", fnspec.TagNetworkAllow: "10.0.0.5"}, wantErr: "needs network egress"},
		{name: "ipv6", tags: map[string]string{fnspec.TagNetworkAllow: "fd00::1"}, wantErr: "only IPv4"},
		{name: "garbage", tags: map[string]string{fnspec.TagNetworkAllow: "db.local:5432"}, wantErr: "not an address or CIDR"},
		{name: "port zero", tags: map[string]string{fnspec.TagNetworkAllow: "10.0.0.5:0"}, wantErr: "not in 1-65535"},
		{name: "port too big", tags: map[string]string{fnspec.TagNetworkAllow: "10.0.0.5:65536"}, wantErr: "not in 1-65535"},
		{name: "empty range", tags: map[string]string{fnspec.TagNetworkAllow: "10.0.0.5:90-80"}, wantErr: "is empty"},
		{name: "too many", tags: map[string]string{fnspec.TagNetworkAllow: strings.Repeat("10.0.0.1 ", fnspec.MaxAllow+1)}, wantErr: "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fnspec.NetworkFromTags(tt.tags)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NetworkFromTags(%v) = %v, %v; want an error containing %q", tt.tags, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("NetworkFromTags(%v) (-want +got):\n%s", tt.tags, diff)
			}
		})
	}
}
