package promapi

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// This file reproduces the JSON wire format of Prometheus's HTTP API
// (web/api/v1/json_codec.go and util/jsonutil), appending to byte slices.

// appendQueryData encodes {"resultType":...,"result":...}.
func appendQueryData(buf []byte, v parser.Value) ([]byte, error) {
	buf = append(buf, `{"resultType":`...)
	buf = appendString(buf, string(v.Type()))
	buf = append(buf, `,"result":`...)
	switch v := v.(type) {
	case promql.Vector:
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendSample(buf, s)
		}
		buf = append(buf, ']')
	case promql.Matrix:
		buf = append(buf, '[')
		for i, s := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendSeries(buf, s)
		}
		buf = append(buf, ']')
	case promql.Scalar:
		buf = append(buf, '[')
		buf = appendTimestamp(buf, v.T)
		buf = append(buf, ',')
		buf = appendFloat(buf, v.V)
		buf = append(buf, ']')
	case promql.String:
		buf = append(buf, '[')
		buf = appendTimestamp(buf, v.T)
		buf = append(buf, ',')
		buf = appendString(buf, v.V)
		buf = append(buf, ']')
	default:
		return nil, fmt.Errorf("unexpected query result type %T", v)
	}
	return append(buf, '}'), nil
}

// appendSample encodes {"metric":{...},"value":[t,"v"]} (or "histogram").
func appendSample(buf []byte, s promql.Sample) []byte {
	buf = append(buf, `{"metric":`...)
	buf = appendLabels(buf, s.Metric)
	if s.H == nil {
		buf = append(buf, `,"value":[`...)
		buf = appendTimestamp(buf, s.T)
		buf = append(buf, ',')
		buf = appendFloat(buf, s.F)
	} else {
		buf = append(buf, `,"histogram":[`...)
		buf = appendTimestamp(buf, s.T)
		buf = append(buf, ',')
		buf = appendHistogram(buf, s.H)
	}
	return append(buf, "]}"...)
}

// appendSeries encodes {"metric":{...},"values":[...],"histograms":[...]},
// omitting empty "values" and "histograms".
func appendSeries(buf []byte, s promql.Series) []byte {
	buf = append(buf, `{"metric":`...)
	buf = appendLabels(buf, s.Metric)
	if len(s.Floats) > 0 {
		buf = append(buf, `,"values":[`...)
		for i, p := range s.Floats {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = appendTimestamp(buf, p.T)
			buf = append(buf, ',')
			buf = appendFloat(buf, p.F)
			buf = append(buf, ']')
		}
		buf = append(buf, ']')
	}
	if len(s.Histograms) > 0 {
		buf = append(buf, `,"histograms":[`...)
		for i, p := range s.Histograms {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '[')
			buf = appendTimestamp(buf, p.T)
			buf = append(buf, ',')
			buf = appendHistogram(buf, p.H)
			buf = append(buf, ']')
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

// appendLabels encodes a label set as a JSON object in label order.
func appendLabels(buf []byte, ls labels.Labels) []byte {
	buf = append(buf, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = appendString(buf, l.Name)
		buf = append(buf, ':')
		buf = appendString(buf, l.Value)
	})
	return append(buf, '}')
}

// appendLabelsList encodes a list of label sets, `[]` when empty.
func appendLabelsList(buf []byte, list []labels.Labels) []byte {
	buf = append(buf, '[')
	for i, ls := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendLabels(buf, ls)
	}
	return append(buf, ']')
}

// appendStrings encodes a list of strings, `[]` when empty.
func appendStrings(buf []byte, list []string) []byte {
	buf = append(buf, '[')
	for i, s := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, s)
	}
	return append(buf, ']')
}

// appendTimestamp writes a millisecond timestamp as Unix seconds with up to
// three decimals (1435781451.781), exactly like Prometheus.
func appendTimestamp(buf []byte, t int64) []byte {
	if t < 0 {
		buf = append(buf, '-')
		t = -t
	}
	buf = strconv.AppendInt(buf, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		buf = append(buf, '.')
		if frac < 100 {
			buf = append(buf, '0')
		}
		if frac < 10 {
			buf = append(buf, '0')
		}
		buf = strconv.AppendInt(buf, frac, 10)
	}
	return buf
}

// appendFloat writes a sample value as a JSON string the way Prometheus does:
// shortest representation, exponent notation for very small or large
// magnitudes, and "+Inf", "-Inf", "NaN" for the special values.
func appendFloat(buf []byte, f float64) []byte {
	buf = append(buf, '"')
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	return append(buf, '"')
}

// appendHistogram encodes a native histogram like Prometheus's
// jsonutil.MarshalHistogram: {"count":"..","sum":"..","buckets":[[b,"lo","hi","n"],...]}.
func appendHistogram(buf []byte, h *histogram.FloatHistogram) []byte {
	buf = append(buf, `{"count":`...)
	buf = appendFloat(buf, h.Count)
	buf = append(buf, `,"sum":`...)
	buf = appendFloat(buf, h.Sum)
	found := false
	it := h.AllBucketIterator()
	for it.Next() {
		b := it.At()
		if b.Count == 0 {
			continue
		}
		if found {
			buf = append(buf, ',')
		} else {
			buf = append(buf, `,"buckets":[`...)
			found = true
		}
		boundaries := 2 // Open interval.
		switch {
		case b.LowerInclusive && b.UpperInclusive:
			boundaries = 3
		case b.LowerInclusive:
			boundaries = 1
		case b.UpperInclusive:
			boundaries = 0
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, int64(boundaries), 10)
		buf = append(buf, ',')
		buf = appendFloat(buf, b.Lower)
		buf = append(buf, ',')
		buf = appendFloat(buf, b.Upper)
		buf = append(buf, ',')
		buf = appendFloat(buf, b.Count)
		buf = append(buf, ']')
	}
	if found {
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 is replaced by
// U+FFFD, as encoding/json does.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
