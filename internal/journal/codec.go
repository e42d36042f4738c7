package journal

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// FormatVersion is the envelope format this binary writes and reads:
//
//	byte 0     FormatVersion (1)
//	bytes 1-2  Type, big endian
//	byte 3     schema version of the type
//	bytes 4-   body: JSON of the entry struct
//
// A different first byte is not decodable (ErrFormat). Bump it only for a
// change no older reader could survive, with a migration plan.
const FormatVersion = 1

const headerLen = 4

// ErrFormat reports an entry that cannot be decoded at all (corrupt or an
// unknown envelope format). It is an errdefs.ErrInternal.
var ErrFormat = fmt.Errorf("undecodable journal entry: %w", errdefs.ErrInternal)

// Encode serialises e with the current schema version of its type.
func Encode(e Entry) ([]byte, error) {
	if u, ok := e.(*Unknown); ok {
		return encodeRaw(u.T, u.Version, u.Body), nil
	}
	v := currentVersion(e.Type())
	if v == 0 {
		return nil, fmt.Errorf("encoding %s: not a known entry type: %w", e.Type(), errdefs.ErrInvalidArgument)
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", e.Type(), err)
	}
	return encodeRaw(e.Type(), v, body), nil
}

func encodeRaw(t Type, v uint8, body []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(body))
	b[0] = FormatVersion
	binary.BigEndian.PutUint16(b[1:3], uint16(t))
	b[3] = v
	return append(b, body...)
}

// Decode parses an entry. Unknown types and newer schema versions decode to
// *Unknown without error; only a broken envelope or body is an error.
func Decode(b []byte) (Entry, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrFormat, len(b))
	}
	if b[0] != FormatVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrFormat, b[0], FormatVersion)
	}
	t := Type(binary.BigEndian.Uint16(b[1:3]))
	v := b[3]
	body := b[headerLen:]
	if t == TypeInvalid || v == 0 {
		return nil, fmt.Errorf("%w: type %d version %d", ErrFormat, t, v)
	}
	e := newEntry(t)
	if e == nil || v > currentVersion(t) {
		return &Unknown{T: t, Version: v, Body: append([]byte(nil), body...)}, nil
	}
	if err := decodeBody(e, v, body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %w", ErrFormat, t, v, err)
	}
	return e, nil
}

// decodeBody fills e from a body of schema version v (1..current). When a
// type gains version 2, decode older versions here into the current struct
// (an upgrade), keeping the old testdata sample passing.
func decodeBody(e Entry, v uint8, body []byte) error {
	_ = v // every type is at version 1 today
	if err := json.Unmarshal(body, e); err != nil {
		return err
	}
	return nil
}

// IsUnknown reports whether e is an entry this binary cannot interpret.
func IsUnknown(e Entry) bool {
	_, ok := e.(*Unknown)
	return ok
}
