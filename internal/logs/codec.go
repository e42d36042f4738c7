package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Wire format of one JetStream message (one batch of events of one stream):
//
//	byte    version (1)
//	uvarint event count
//	per event: varint timestamp (Unix ms), uvarint length, message bytes
//
// The group and stream are in the subject; the ingestion time is the
// message's stream timestamp. Unknown versions are rejected on read.
const codecV1 = 1

var errCorrupt = errors.New("corrupt log batch")

// appendBatch encodes events onto dst.
func appendBatch(dst []byte, events []Event) []byte {
	dst = appendBatchHeader(dst, len(events))
	for _, e := range events {
		dst = appendEvent(dst, e)
	}
	return dst
}

// appendBatchHeader starts a batch of n events; appendEvent adds each.
func appendBatchHeader(dst []byte, n int) []byte {
	dst = append(dst, codecV1)
	return binary.AppendUvarint(dst, uint64(n))
}

func appendEvent(dst []byte, e Event) []byte {
	dst = binary.AppendVarint(dst, e.Timestamp.UnixMilli())
	m := e.Message
	if len(m) > MaxEventBytes {
		m = m[:MaxEventBytes]
	}
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	return append(dst, m...)
}

// batchHeaderLen is the length of the header of an encoded batch (0 if it
// has none).
func batchHeaderLen(data []byte) int {
	if len(data) == 0 {
		return 0
	}
	_, n := binary.Uvarint(data[1:])
	return 1 + max(n, 0)
}

// encodedSize is an upper bound of the encoded size of one event.
func encodedSize(e Event) int {
	n := len(e.Message)
	if n > MaxEventBytes {
		n = MaxEventBytes
	}
	return n + 2*binary.MaxVarintLen64
}

// rawEvent is one decoded event; msg aliases the message buffer.
type rawEvent struct {
	ts  int64
	msg []byte
}

// decodeBatch calls fn for each event of a batch, with its index.
// fn returning false stops the walk.
func decodeBatch(b []byte, fn func(i int, e rawEvent) bool) error {
	if len(b) == 0 || b[0] != codecV1 {
		return fmt.Errorf("log batch version %v: %w", b[:min(1, len(b))], errCorrupt)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return errCorrupt
	}
	b = b[k:]
	for i := 0; i < int(n); i++ {
		ts, k := binary.Varint(b)
		if k <= 0 {
			return errCorrupt
		}
		b = b[k:]
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return errCorrupt
		}
		b = b[k:]
		if !fn(i, rawEvent{ts: ts, msg: b[:l]}) {
			return nil
		}
		b = b[l:]
	}
	return nil
}

// Position addresses one event: the JetStream sequence of its batch and its
// index inside the batch. Positions order events by ingestion.
type Position struct {
	Seq   uint64
	Index int
}

// IsZero reports whether p is the zero position (before every event).
func (p Position) IsZero() bool { return p == Position{} }

// Less reports whether p comes before q.
func (p Position) Less(q Position) bool {
	return p.Seq < q.Seq || p.Seq == q.Seq && p.Index < q.Index
}

// next is the position just after p.
func (p Position) next() Position { return Position{Seq: p.Seq, Index: p.Index + 1} }

// String renders p as 26 decimal digits; it doubles as the event ID and as
// the body of pagination tokens.
func (p Position) String() string {
	var b [26]byte
	s := strconv.AppendUint(b[:0], p.Seq, 10)
	out := make([]byte, 0, 26)
	for i := len(s); i < 20; i++ {
		out = append(out, '0')
	}
	out = append(out, s...)
	idx := strconv.AppendUint(b[:0], uint64(p.Index), 10)
	for i := len(idx); i < 6; i++ {
		out = append(out, '0')
	}
	return string(append(out, idx...))
}

// ParsePosition parses the output of Position.String.
func ParsePosition(s string) (Position, error) {
	if len(s) != 26 {
		return Position{}, fmt.Errorf("position %q: %w", s, errdefs.ErrInvalidArgument)
	}
	seq, err := strconv.ParseUint(s[:20], 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: %w", s, errdefs.ErrInvalidArgument)
	}
	idx, err := strconv.ParseUint(s[20:], 10, 32)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: %w", s, errdefs.ErrInvalidArgument)
	}
	return Position{Seq: seq, Index: int(idx)}, nil
}
