package jsonscan

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// decode builds the value the scanner walks, as encoding/json's any would
// hold it (numbers as float64).
func decode(s *Scanner) any {
	switch s.Peek() {
	case Object:
		m := map[string]any{}
		s.Object()
		for k, ok := s.Key(); ok; k, ok = s.Key() {
			key := string(k)
			m[key] = decode(s)
		}
		return m
	case Array:
		a := []any{}
		s.Array()
		for s.Next() {
			a = append(a, decode(s))
		}
		return a
	case String:
		return string(s.String())
	case Number:
		f, err := strconv.ParseFloat(string(s.Number()), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			s.Fail(err)
		}
		return f
	case Bool:
		t, _ := s.Bool()
		return t
	case Null:
		s.Null()
		return nil
	}
	s.Skip()
	return nil
}

var docs = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-3`, `-12E+4`, `"x"`, ` {"a" : [1, 2 ,{"b":null}] } `,
	`{"a":{},"b":[],"c":[[]],"d":{"e":{"f":"g"}}}`,
	`"esc \" \\ \/ \b \f \n \r \t \u00e9 \u20AC \ud83d\ude00"`,
	`"lone \ud83d x"`, `"lone low \ude00"`, `"pair then \ud83d\u0041"`,
	`{"dup":1,"dup":2}`,
	`[1,"two",{"three":3.0},null,true,false,-4e2]`,
	// not JSON
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{,}`, `[,1]`, `{"a" 1}`, `{"a":}`, `{a:1}`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`,
	`[+1]`, `nul`, `nulll`, `tru`, `"unterminated`, "\"ctl \x01\"", `"bad \x"`, `"bad \u12"`, `"bad \u12G4"`, `{} {}`, `[] x`,
	`[1 2]`, `{"a":1 "b":2}`, `'x'`, `[NaN]`, `[Infinity]`,
}

// TestAgainstEncodingJSON: the scanner accepts exactly what encoding/json
// accepts, and walks to the values it decodes.
func TestAgainstEncodingJSON(t *testing.T) {
	valid := 0
	for _, doc := range docs {
		check(t, []byte(doc))
		if json.Valid([]byte(doc)) {
			valid++
		}
	}
	if valid < 15 || valid > len(docs)-25 {
		t.Fatalf("%d of %d documents valid: the table lost its mix", valid, len(docs))
	}
}

func check(t *testing.T, data []byte) {
	t.Helper()
	s := New(data)
	s.Skip()
	err := s.End()
	if depthOK(data) && (err == nil) != json.Valid(data) {
		t.Fatalf("%q: scanner err %v, json.Valid %v", data, err, json.Valid(data))
	}
	if err != nil || !utf8.Valid(data) {
		return
	}
	var want any
	if json.Unmarshal(data, &want) != nil {
		return // a number beyond float64: valid JSON that encoding/json refuses
	}
	s.Reset(data)
	got := decode(s)
	if err := s.End(); err != nil {
		t.Fatalf("%q: walk: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: walked %#v, encoding/json %#v", data, got, want)
	}
}

func depthOK(data []byte) bool {
	d, m := 0, 0
	for _, c := range data {
		switch c {
		case '[', '{':
			d++
			m = max(m, d)
		case ']', '}':
			d--
		}
	}
	return m <= MaxDepth
}

func TestDepth(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2)
	s := New([]byte(deep))
	s.Skip()
	if err := s.End(); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("err = %v", err)
	}
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	s.Reset([]byte(ok))
	s.Skip()
	if err := s.End(); err != nil {
		t.Fatal(err)
	}
}

func TestParseUint(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
	}
	for _, tt := range tests {
		if n, ok := ParseUint([]byte(tt.in)); n != tt.want || ok != tt.ok {
			t.Errorf("%q: %d %v, want %d %v", tt.in, n, ok, tt.want, tt.ok)
		}
	}
}

func TestKinds(t *testing.T) {
	s := New([]byte(`{"o":null,"a":null,"s":null,"n":null,"x":[1]}`))
	if !s.Object() {
		t.Fatal(s.Err())
	}
	for k, ok := s.Key(); ok; k, ok = s.Key() {
		switch string(k) {
		case "o":
			if s.Object() {
				t.Error("null read as an object")
			}
		case "a":
			if s.Array() {
				t.Error("null read as an array")
			}
		case "s":
			if s.String() != nil {
				t.Error("null read as a string")
			}
		case "n":
			if s.Number() != nil {
				t.Error("null read as a number")
			}
		case "x":
			if s.Object() {
				t.Error("array read as an object")
			}
		}
	}
	if err := s.End(); err == nil || !strings.Contains(err.Error(), "want object, got array") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzScanner(f *testing.F) {
	for _, d := range docs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}

func BenchmarkSkip(b *testing.B) {
	doc := []byte(`{"pods":[` + strings.Repeat(`{"podRef":{"name":"web-0","namespace":"default"},"cpu":{"time":"2025-03-03T21:35:34Z","usageCoreNanoSeconds":123456789},"memory":{"usageBytes":1234,"workingSetBytes":99}},`, 200) + `{}]}`)
	b.SetBytes(int64(len(doc)))
	s := New(nil)
	for b.Loop() {
		s.Reset(doc)
		s.Skip()
		if err := s.End(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSpace reads an array whose white space runs 0 to 20 spaces between
// newlines and tabs, as the 8-byte skip of indentation meets them.
func TestSpace(t *testing.T) {
	for n := range 21 {
		ws := "\n" + strings.Repeat(" ", n) + "\t" + strings.Repeat(" ", n) + "\r\n" + strings.Repeat(" ", n)
		doc := ws + "[" + ws + "1" + ws + "," + ws + `"a b"` + ws + "]" + ws
		s := New([]byte(doc))
		var got []string
		if s.Array() {
			for s.Next() {
				if s.Peek() == Number {
					got = append(got, string(s.Number()))
				} else {
					got = append(got, string(s.String()))
				}
			}
		}
		if err := s.End(); err != nil || len(got) != 2 || got[0] != "1" || got[1] != "a b" {
			t.Errorf("%d spaces: %q, %v", n, got, err)
		}
	}
}
