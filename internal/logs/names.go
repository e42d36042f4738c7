package logs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Name limits, as CloudWatch Logs enforces them.
const (
	maxNameLen = 512
	// LambdaGroupPrefix prefixes every function's log group.
	LambdaGroupPrefix = "/aws/lambda/"
)

// GroupName returns the log group of a function, "/aws/lambda/NAME".
func GroupName(function string) string { return LambdaGroupPrefix + function }

// NewStreamName returns a Lambda-style log stream name for a new execution
// environment started at t running version ("$LATEST", "3"):
// "2024/05/01/[$LATEST]" followed by 32 random hex digits.
func NewStreamName(t time.Time, version string) string {
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	return StreamName(t, version, hex.EncodeToString(id[:]))
}

// StreamName builds "YYYY/MM/DD/[VERSION]ID" from the UTC date of t.
func StreamName(t time.Time, version, id string) string {
	y, m, d := t.UTC().Date()
	return fmt.Sprintf("%04d/%02d/%02d/[%s]%s", y, int(m), d, version, id)
}

// validateGroup checks a log group name against CloudWatch's rules:
// 1–512 characters from [A-Za-z0-9_\-/.#].
func validateGroup(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("log group name %q: length must be 1-%d: %w", name, maxNameLen, errdefs.ErrInvalidArgument)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isAlnum(c) || strings.IndexByte("_-/.#", c) >= 0) {
			return fmt.Errorf("log group name %q: character %q not allowed: %w", name, c, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// validateStream checks a log stream name: 1–512 characters, no ':' or '*'.
func validateStream(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("log stream name %q: length must be 1-%d: %w", name, maxNameLen, errdefs.ErrInvalidArgument)
	}
	if strings.ContainsAny(name, ":*") {
		return fmt.Errorf("log stream name %q: ':' and '*' not allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// safeByte reports whether c may appear unescaped in a token: it must be
// valid in a NATS subject token and in a JetStream KV key ([-/_=.A-Za-z0-9]
// minus '.', which separates tokens, and '=', our escape character).
func safeByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '/' }

// encodeToken maps any non-empty name to a NATS subject token and KV key
// fragment, escaping every unsafe byte as "=XX" (upper-case hex). Names made
// of [A-Za-z0-9_-/] stay readable: "/aws/lambda/f" is its own token, and
// "2024/05/01/[$LATEST]ab" becomes "2024/05/01/=5B=24LATEST=5Dab".
func encodeToken(name string) string {
	i := 0
	for i < len(name) && safeByte(name[i]) {
		i++
	}
	if i == len(name) {
		return name
	}
	const hexdig = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(name) + 16)
	b.WriteString(name[:i])
	for ; i < len(name); i++ {
		c := name[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexdig[c>>4])
		b.WriteByte(hexdig[c&15])
	}
	return b.String()
}

// decodeToken inverts encodeToken.
func decodeToken(tok string) (string, error) {
	if strings.IndexByte(tok, '=') < 0 {
		return tok, nil
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		if tok[i] != '=' {
			b = append(b, tok[i])
			continue
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("decoding token %q: truncated escape: %w", tok, errdefs.ErrInvalidArgument)
		}
		v, err := hex.DecodeString(tok[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("decoding token %q: %w", tok, errdefs.ErrInvalidArgument)
		}
		b = append(b, v[0])
		i += 2
	}
	return string(b), nil
}
