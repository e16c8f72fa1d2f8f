// Package jsonscan reads JSON in one forward pass, without building a tree
// of values: the caller walks objects and arrays and reads or skips each
// value as it comes. Everything it skips is still checked against the JSON
// grammar (RFC 8259), so a malformed payload is an error wherever the fault
// is. It allocates nothing but the bytes of strings that hold escapes.
// Strings come back as their bytes, escapes resolved as encoding/json
// resolves them; invalid UTF-8 is kept as it is, where encoding/json puts
// U+FFFD.
//
// A walk looks like this:
//
//	s := jsonscan.New(data)
//	if s.Object() {
//		for key, ok := s.Key(); ok; key, ok = s.Key() {
//			switch string(key) {
//			case "name":
//				name = string(s.String())
//			default:
//				s.Skip()
//			}
//		}
//	}
//	err := s.End()
//
// The first error stops the walk: every later call returns a zero value,
// loops end, and Err and End report the error with its byte offset.
package jsonscan

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays that Skip descends
// into, so that a hostile payload cannot exhaust the stack.
const MaxDepth = 512

// Kind is the kind of the next value.
type Kind uint8

// The kinds of JSON values.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"invalid value", "null", "bool", "number", "string", "array", "object"}

func (k Kind) String() string { return kindNames[k] }

// Scanner reads one JSON document.
type Scanner struct {
	data  []byte
	pos   int
	err   error
	first bool   // the next member or element is the container's first
	buf   []byte // unescaped strings
}

// New returns a scanner over data, which it does not modify or keep beyond
// the walk.
func New(data []byte) *Scanner { return &Scanner{data: data} }

// Reset starts a walk over data, reusing the scanner's buffer.
func (s *Scanner) Reset(data []byte) {
	*s = Scanner{data: data, buf: s.buf[:0]}
}

// Err is the first error met, nil if none.
func (s *Scanner) Err() error { return s.err }

// Offset is the byte offset the scanner has reached.
func (s *Scanner) Offset() int { return s.pos }

// Fail records err as the walk's error, if it has none yet, so that the
// caller's own checks (a wrong kind, a value out of range) stop the walk
// like a syntax error does.
func (s *Scanner) Fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *Scanner) syntax(what string) {
	if s.err != nil {
		return
	}
	if s.pos >= len(s.data) {
		s.err = fmt.Errorf("unexpected end of JSON input %s", what)
		return
	}
	s.err = fmt.Errorf("offset %d: invalid character %q %s", s.pos, s.data[s.pos], what)
}

func (s *Scanner) space() {
	data, i := s.data, s.pos
	for i < len(data) && isSpace[data[i]] {
		i++
		// Indented payloads (the kubelet's) hold a run of spaces after
		// each newline: 8 bytes at a time, to the first other byte.
		for i+8 <= len(data) {
			if x := binary.LittleEndian.Uint64(data[i:]) ^ eightSpaces; x != 0 {
				i += bits.TrailingZeros64(x) >> 3
				break
			}
			i += 8
		}
	}
	s.pos = i
}

const eightSpaces = 0x2020202020202020

// isSpace and plain classify bytes: JSON's white space, and the bytes a
// string holds as they are (not a quote, a backslash or a control byte).
var isSpace, plain = func() (sp, pl [256]bool) {
	for _, c := range " \t\n\r" {
		sp[c] = true
	}
	for c := 0x20; c < 256; c++ {
		pl[c] = c != '"' && c != '\\'
	}
	return sp, pl
}()

// Peek is the kind of the next value, without reading it; Invalid after an
// error or where no value starts.
func (s *Scanner) Peek() Kind {
	if s.err != nil {
		return Invalid
	}
	s.space()
	if s.pos >= len(s.data) {
		return Invalid
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == 'n':
		return Null
	case c == 't' || c == 'f':
		return Bool
	case c == '-' || c >= '0' && c <= '9':
		return Number
	}
	return Invalid
}

// Null reads the next value if it is null and reports whether it was.
func (s *Scanner) Null() bool {
	if s.Peek() != Null {
		return false
	}
	s.literal("null")
	return s.err == nil
}

func (s *Scanner) literal(lit string) {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		for i := 0; i < len(lit) && s.pos < len(s.data) && s.data[s.pos] == lit[i]; i++ {
			s.pos++
		}
		s.syntax("in literal " + lit)
		return
	}
	s.pos += len(lit)
}

// Object reads the opening of an object and reports whether there is one;
// members follow through Key. It reads a null as no object (false, no
// error); any other kind is an error.
func (s *Scanner) Object() bool { return s.open(Object) }

// Array reads the opening of an array and reports whether there is one;
// elements follow through Next. A null is no array, as for Object.
func (s *Scanner) Array() bool { return s.open(Array) }

func (s *Scanner) open(k Kind) bool {
	switch got := s.Peek(); got {
	case k:
		s.pos++
		s.first = true
		return true
	case Null:
		s.literal("null")
	case Invalid:
		s.syntax("looking for beginning of value")
	default:
		s.Fail(fmt.Errorf("offset %d: want %s, got %s", s.pos, k, got))
	}
	return false
}

// Key reads the next member's key and the colon after it; the caller then
// reads or skips the member's value. At the object's end it reads the
// closing brace and returns false. The key's bytes are valid until the
// next call.
func (s *Scanner) Key() ([]byte, bool) {
	if !s.next('}') {
		return nil, false
	}
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		s.syntax("looking for beginning of object key string")
		return nil, false
	}
	key := s.str()
	s.space()
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		s.syntax("after object key")
		return nil, false
	}
	s.pos++
	return key, s.err == nil
}

// Next reports whether the array has another element, which the caller
// then reads or skips; at the array's end it reads the closing bracket and
// returns false.
func (s *Scanner) Next() bool { return s.next(']') }

// next reads the comma before a member or element, or the container's end.
func (s *Scanner) next(end byte) bool {
	if s.err != nil {
		return false
	}
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == end {
		s.pos++
		s.first = false
		return false
	}
	if !s.first {
		if s.pos >= len(s.data) || s.data[s.pos] != ',' {
			if end == '}' {
				s.syntax("after object key:value pair")
			} else {
				s.syntax("after array element")
			}
			return false
		}
		s.pos++
		s.space()
	}
	s.first = false
	return true
}

// String reads a string value, null as an empty one; any other kind is an
// error. The bytes, escapes resolved, are valid until the next call.
func (s *Scanner) String() []byte {
	switch got := s.Peek(); got {
	case String:
		return s.str()
	case Null:
		s.literal("null")
	case Invalid:
		s.syntax("looking for beginning of value")
	default:
		s.Fail(fmt.Errorf("offset %d: want string, got %s", s.pos, got))
	}
	return nil
}

// str reads the string at s.pos (its opening quote).
func (s *Scanner) str() []byte {
	data := s.data
	start := s.pos + 1
	i := start
	for i < len(data) && plain[data[i]] {
		i++
	}
	s.pos = i
	switch {
	case i >= len(data) || data[i] < 0x20:
		s.syntax("in string literal")
		return nil
	case data[i] == '\\':
		return s.unescape(start)
	}
	s.pos++
	return data[start:i]
}

// unescape reads the rest of a string from its first backslash, as
// encoding/json does: a bad or lone surrogate becomes U+FFFD.
func (s *Scanner) unescape(start int) []byte {
	b := append(s.buf[:0], s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			s.buf = b
			return b
		case c < 0x20:
			s.syntax("in string literal")
			return nil
		case c != '\\':
			b = append(b, c)
			s.pos++
			continue
		}
		s.pos++
		if s.pos >= len(s.data) {
			break
		}
		switch e := s.data[s.pos]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := s.hex4(s.pos + 1)
			if !ok {
				s.syntax("in \\u hexadecimal character escape")
				return nil
			}
			s.pos += 5
			if utf16.IsSurrogate(r) {
				r2, ok := s.u4(s.pos)
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					s.pos += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			s.syntax("in string escape code")
			return nil
		}
		s.pos++
	}
	s.syntax("in string literal")
	return nil
}

// u4 reads a \u escape at i.
func (s *Scanner) u4(i int) (rune, bool) {
	if i+2 > len(s.data) || s.data[i] != '\\' || s.data[i+1] != 'u' {
		return 0, false
	}
	return s.hex4(i + 2)
}

// hex4 reads the four hex digits at i.
func (s *Scanner) hex4(i int) (rune, bool) {
	if i+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Bool reads true or false; ok is false for a null (no error); any other
// kind is an error.
func (s *Scanner) Bool() (v, ok bool) {
	switch got := s.Peek(); got {
	case Bool:
		if s.data[s.pos] == 't' {
			s.literal("true")
			return true, s.err == nil
		}
		s.literal("false")
		return false, s.err == nil
	case Null:
		s.literal("null")
	case Invalid:
		s.syntax("looking for beginning of value")
	default:
		s.Fail(fmt.Errorf("offset %d: want bool, got %s", s.pos, got))
	}
	return false, false
}

// Number reads a number and returns its text, as the grammar has it; a
// null is no number (nil, no error); any other kind is an error.
func (s *Scanner) Number() []byte {
	switch got := s.Peek(); got {
	case Number:
		return s.number()
	case Null:
		s.literal("null")
	case Invalid:
		s.syntax("looking for beginning of value")
	default:
		s.Fail(fmt.Errorf("offset %d: want number, got %s", s.pos, got))
	}
	return nil
}

// number reads the number at s.pos: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) number() []byte {
	start := s.pos
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.pos < len(s.data) && s.data[s.pos] >= '1' && s.data[s.pos] <= '9':
		s.digits()
	default:
		s.syntax("in numeric literal")
		return nil
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			s.syntax("after decimal point in numeric literal")
			return nil
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			s.syntax("in exponent of numeric literal")
			return nil
		}
	}
	return s.data[start:s.pos]
}

func (s *Scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// ParseUint reads a number's text (from Number) as an unsigned 64-bit
// integer; ok is false for a sign, a fraction, an exponent or a value
// beyond 2^64-1.
func ParseUint(b []byte) (n uint64, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// Skip reads the next value, whatever its kind, checking its syntax.
func (s *Scanner) Skip() { s.skip(0) }

func (s *Scanner) skip(depth int) {
	if depth > MaxDepth {
		s.Fail(fmt.Errorf("offset %d: nested deeper than %d", s.pos, MaxDepth))
		return
	}
	switch s.Peek() {
	case Object:
		s.pos++
		s.first = true
		for _, ok := s.Key(); ok; _, ok = s.Key() {
			s.skip(depth + 1)
		}
	case Array:
		s.pos++
		s.first = true
		for s.Next() {
			s.skip(depth + 1)
		}
	case String:
		s.str()
	case Number:
		s.number()
	case Null:
		s.literal("null")
	case Bool:
		if s.data[s.pos] == 't' {
			s.literal("true")
		} else {
			s.literal("false")
		}
	default:
		s.syntax("looking for beginning of value")
	}
}

// End checks that nothing but white space follows the value read, and
// returns the walk's error.
func (s *Scanner) End() error {
	if s.err == nil {
		s.space()
		if s.pos < len(s.data) {
			s.syntax("after top-level value")
		}
	}
	return s.err
}
