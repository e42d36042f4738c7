package logs

import (
	"fmt"
	"strings"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Pattern is a parsed CloudWatch Logs filter pattern in the unstructured
// term syntax. The zero Pattern (from "") matches every message.
//
//	ERROR                 the message contains "ERROR" (case-sensitive)
//	ERROR Exception       contains both terms, anywhere, in any order
//	"Task timed out"      contains the phrase (quotes allow spaces and symbols)
//	ERROR -Retrying       contains ERROR and not Retrying
//	?ERROR ?WARN          contains at least one of the ?-terms
//
// A message matches when it contains every plain term, none of the -terms,
// and (if there are ?-terms) at least one ?-term. JSON ({ $.x = 1 }),
// space-delimited ([a, b]) and regex (%re%) patterns are not supported and
// fail to parse with errdefs.ErrInvalidArgument.
type Pattern struct {
	all  []string
	none []string
	any  []string
}

// ParsePattern parses a filter pattern. Whitespace-only input yields the
// match-all pattern.
func ParsePattern(s string) (Pattern, error) {
	var p Pattern
	if t := strings.TrimSpace(s); t != "" && (t[0] == '{' || t[0] == '[' || len(t) > 1 && t[0] == '%' && t[len(t)-1] == '%') {
		return Pattern{}, fmt.Errorf("filter pattern %q: only term patterns are supported: %w", s, errdefs.ErrInvalidArgument)
	}
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return p, nil
		}
		kind := byte(0)
		if s[i] == '-' || s[i] == '?' {
			kind = s[i]
			i++
			if i == len(s) || isSpace(s[i]) {
				return Pattern{}, fmt.Errorf("filter pattern %q: %q must prefix a term: %w", s, kind, errdefs.ErrInvalidArgument)
			}
		}
		var term string
		if s[i] == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return Pattern{}, fmt.Errorf("filter pattern %q: unterminated quote: %w", s, errdefs.ErrInvalidArgument)
			}
			term = b.String()
		} else {
			j := i
			for j < len(s) && !isSpace(s[j]) {
				if s[j] == '"' {
					return Pattern{}, fmt.Errorf("filter pattern %q: quote inside a term: %w", s, errdefs.ErrInvalidArgument)
				}
				j++
			}
			term = s[i:j]
			i = j
		}
		if i < len(s) && !isSpace(s[i]) {
			return Pattern{}, fmt.Errorf("filter pattern %q: missing space after quoted term: %w", s, errdefs.ErrInvalidArgument)
		}
		if term == "" {
			continue // "" matches everything; as a -term it would match nothing, so drop it either way as CloudWatch does
		}
		switch kind {
		case '-':
			p.none = append(p.none, term)
		case '?':
			p.any = append(p.any, term)
		default:
			p.all = append(p.all, term)
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// MatchAll reports whether p matches every message.
func (p Pattern) MatchAll() bool { return len(p.all)+len(p.none)+len(p.any) == 0 }

// Match reports whether msg satisfies the pattern.
func (p Pattern) Match(msg string) bool {
	for _, t := range p.all {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	for _, t := range p.none {
		if strings.Contains(msg, t) {
			return false
		}
	}
	if len(p.any) == 0 {
		return true
	}
	for _, t := range p.any {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}

// String renders p back in filter-pattern syntax (every term quoted).
func (p Pattern) String() string {
	var parts []string
	q := func(prefix, t string) string {
		return prefix + `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(t) + `"`
	}
	for _, t := range p.all {
		parts = append(parts, q("", t))
	}
	for _, t := range p.none {
		parts = append(parts, q("-", t))
	}
	for _, t := range p.any {
		parts = append(parts, q("?", t))
	}
	return strings.Join(parts, " ")
}
