package logs

import (
	"regexp"
	"testing"
	"time"
)

func TestEncodeToken_RoundTrip(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`) // a KV key fragment and subject token
	tests := []struct{ name, in, want string }{
		{name: "lambda group", in: "/aws/lambda/my-fn_1", want: "/aws/lambda/my-fn_1"},
		{name: "lambda stream", in: "2024/05/01/[$LATEST]ab", want: "2024/05/01/=5B=24LATEST=5Dab"},
		{name: "dots and wildcards", in: "a.b*c>d e", want: "a=2Eb=2Ac=3Ed=20e"},
		{name: "escape char", in: "x=y", want: "x=3Dy"},
		{name: "utf8", in: "é", want: "=C3=A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeToken(tt.in)
			if got != tt.want || !valid.MatchString(got) {
				t.Fatalf("encodeToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := decodeToken(got)
			if err != nil || back != tt.in {
				t.Fatalf("decodeToken(%q) = %q, %v", got, back, err)
			}
		})
	}
}

func FuzzEncodeToken(f *testing.F) {
	f.Add("/aws/lambda/x")
	f.Add("2024/05/01/[$LATEST]ab")
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		back, err := decodeToken(encodeToken(s))
		if err != nil || back != s {
			t.Fatalf("round trip %q: %q %v", s, back, err)
		}
	})
}

func TestStreamName(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 1, 23, 0, 0, 0, time.FixedZone("x", -3600))
	if got := StreamName(ts, "$LATEST", "abc"); got != "2024/05/02/[$LATEST]abc" {
		t.Errorf("StreamName = %q", got)
	}
	re := regexp.MustCompile(`^\d{4}/\d{2}/\d{2}/\[7\][0-9a-f]{32}$`)
	if a, b := NewStreamName(ts, "7"), NewStreamName(ts, "7"); !re.MatchString(a) || a == b {
		t.Errorf("NewStreamName = %q, %q", a, b)
	}
	if GroupName("f") != "/aws/lambda/f" {
		t.Error("GroupName")
	}
}

func TestPosition_String(t *testing.T) {
	t.Parallel()
	p := Position{Seq: 12345, Index: 42}
	s := p.String()
	if s != "00000000000000012345000042" {
		t.Fatalf("String = %q", s)
	}
	q, err := ParsePosition(s)
	if err != nil || q != p {
		t.Fatalf("ParsePosition = %v, %v", q, err)
	}
}
