package bench

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// clientLabel is the pprof label key the load generator's goroutines carry,
// so that a CPU profile of this process splits client from server time.
const clientLabel = "ignisbench"

// labelledShare decodes a gzipped pprof CPU profile and returns the CPU
// time of samples carrying label key (and of all samples). Only the fields
// needed are decoded: Profile.sample (2), Profile.string_table (6),
// Sample.value (2), Sample.label (3), Label.key (1).
func labelledShare(gz []byte, key string) (labelled, total int64, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return 0, 0, fmt.Errorf("reading profile: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return 0, 0, fmt.Errorf("reading profile: %w", err)
	}
	type sample struct {
		value int64   // last value: cpu nanoseconds
		keys  []int64 // label key string indexes
	}
	var samples []sample
	var strs []string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, fmt.Errorf("reading profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, fmt.Errorf("reading profile: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, 0, fmt.Errorf("reading profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case 2:
			s, err := decodeSample(v)
			if err != nil {
				return 0, 0, err
			}
			samples = append(samples, sample{value: s.value, keys: s.keys})
		case 6:
			strs = append(strs, string(v))
		}
	}
	for _, s := range samples {
		total += s.value
		for _, k := range s.keys {
			if k >= 0 && int(k) < len(strs) && strs[k] == key {
				labelled += s.value
				break
			}
		}
	}
	return labelled, total, nil
}

type decodedSample struct {
	value int64
	keys  []int64
}

func decodeSample(b []byte) (decodedSample, error) {
	var s decodedSample
	bad := func(n int) (decodedSample, error) {
		return decodedSample{}, fmt.Errorf("reading profile sample: %w", protowire.ParseError(n))
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return bad(n)
		}
		b = b[n:]
		switch {
		case num == 2 && typ == protowire.BytesType: // packed values
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return bad(n)
			}
			b = b[n:]
			for len(v) > 0 {
				x, m := protowire.ConsumeVarint(v)
				if m < 0 {
					return bad(m)
				}
				v = v[m:]
				s.value = int64(x)
			}
		case num == 2 && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return bad(n)
			}
			b = b[n:]
			s.value = int64(x)
		case num == 3 && typ == protowire.BytesType: // Label
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return bad(n)
			}
			b = b[n:]
			for len(v) > 0 {
				lnum, ltyp, m := protowire.ConsumeTag(v)
				if m < 0 {
					return bad(m)
				}
				v = v[m:]
				if lnum == 1 && ltyp == protowire.VarintType {
					x, m := protowire.ConsumeVarint(v)
					if m < 0 {
						return bad(m)
					}
					v = v[m:]
					s.keys = append(s.keys, int64(x))
					continue
				}
				m = protowire.ConsumeFieldValue(lnum, ltyp, v)
				if m < 0 {
					return bad(m)
				}
				v = v[m:]
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return bad(n)
			}
			b = b[n:]
		}
	}
	return s, nil
}
