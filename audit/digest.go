package audit

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
)

// lonerDigester computes loner digests, reusing its buffers: it re-encodes
// with a byte-level scanner rather than encoding/json, which is several
// times slower, since every queued job goes through it.
type lonerDigester struct {
	plain, sorted, val bytes.Buffer
	pairs              []lonerPair
}

type lonerPair struct {
	key      string
	from, to int // the value, in val
}

// digests returns the hex digests resque-loner may have given a job with
// this payload: Digest::MD5.hexdigest(Resque.encode(class: ..., args: ...))
// with Hash arguments as their sorted [key, value] pairs (resque-loner 1.x)
// and, when that differs, as they are (older versions). It returns nil for
// a payload resque-loner could not have enqueued (no args array).
func (d *lonerDigester) digests(raw []byte) []string {
	class, args, ok := topClassArgs(raw)
	if !ok || len(args) == 0 || args[0] != '[' {
		return nil
	}
	if class == nil {
		class = []byte("null")
	}
	d.plain.Reset()
	d.sorted.Reset()
	d.plain.WriteString(`{"class":`)
	c := rjson{src: class}
	if c.value(&d.plain) != nil {
		return nil
	}
	d.plain.WriteString(`,"args":[`)
	d.sorted.Write(d.plain.Bytes())
	a := rjson{src: args, pos: 1}
	hashes := false
	if a.peek() == ']' {
		a.pos++
	} else {
		for {
			if a.peek() == '{' {
				hashes = true
				start := a.pos
				if a.value(&d.plain) != nil {
					return nil
				}
				end := a.pos
				a.pos = start
				if d.sortedObject(&a) != nil || a.pos != end {
					return nil
				}
			} else {
				n := d.plain.Len()
				if a.value(&d.plain) != nil {
					return nil
				}
				d.sorted.Write(d.plain.Bytes()[n:])
			}
			switch a.peek() {
			case ',':
				a.pos++
				d.plain.WriteByte(',')
				d.sorted.WriteByte(',')
				continue
			case ']':
				a.pos++
			default:
				return nil
			}
			break
		}
	}
	d.plain.WriteString("]}")
	d.sorted.WriteString("]}")
	out := []string{md5hex(d.sorted.Bytes())}
	if hashes && !bytes.Equal(d.plain.Bytes(), d.sorted.Bytes()) {
		out = append(out, md5hex(d.plain.Bytes()))
	}
	return out
}

// sortedObject writes the object at r as Ruby's Hash#sort gives it: the
// array of its [key, value] pairs sorted by key, one pair per key (the
// last value wins, as in a Ruby Hash).
func (d *lonerDigester) sortedObject(r *rjson) error {
	d.val.Reset()
	d.pairs = d.pairs[:0]
	r.pos++ // '{'
	if r.peek() == '}' {
		r.pos++
		d.sorted.WriteString("[]")
		return nil
	}
	at := map[string]int{}
	for {
		if r.peek() != '"' {
			return errNotJSON
		}
		key, err := r.key()
		if err != nil {
			return err
		}
		if r.peek() != ':' {
			return errNotJSON
		}
		r.pos++
		from := d.val.Len()
		if err := r.value(&d.val); err != nil {
			return err
		}
		p := lonerPair{key: key, from: from, to: d.val.Len()}
		if i, dup := at[key]; dup {
			d.pairs[i] = p
		} else {
			at[key] = len(d.pairs)
			d.pairs = append(d.pairs, p)
		}
		switch r.peek() {
		case ',':
			r.pos++
			continue
		case '}':
			r.pos++
		default:
			return errNotJSON
		}
		break
	}
	sort.SliceStable(d.pairs, func(i, j int) bool { return d.pairs[i].key < d.pairs[j].key })
	val := d.val.Bytes()
	d.sorted.WriteByte('[')
	for i, p := range d.pairs {
		if i > 0 {
			d.sorted.WriteByte(',')
		}
		d.sorted.WriteByte('[')
		writeRubyString(&d.sorted, p.key)
		d.sorted.WriteByte(',')
		d.sorted.Write(val[p.from:p.to])
		d.sorted.WriteByte(']')
	}
	d.sorted.WriteByte(']')
	return nil
}

// topClassArgs returns the raw values of the payload object's "class" and
// "args" fields (nil when absent; the last wins when repeated).
func topClassArgs(raw []byte) (class, args []byte, ok bool) {
	r := rjson{src: raw}
	if r.peek() != '{' {
		return nil, nil, false
	}
	r.pos++
	if r.peek() == '}' {
		return nil, nil, true
	}
	for {
		if r.peek() != '"' {
			return nil, nil, false
		}
		key, err := r.key()
		if err != nil || r.peek() != ':' {
			return nil, nil, false
		}
		r.pos++
		r.ws()
		start := r.pos
		if r.value(nil) != nil {
			return nil, nil, false
		}
		switch key {
		case "class":
			class = raw[start:r.pos]
		case "args":
			args = raw[start:r.pos]
		}
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
			return class, args, true
		default:
			return nil, nil, false
		}
	}
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

var errNotJSON = errors.New("not JSON")

// rjson re-encodes JSON the way Ruby's JSON.generate writes what
// JSON.parse read from it: compact, object keys in their order, numbers
// and literals as written, strings with Ruby's escaping (only '"', '\'
// and control characters; "/" and non-ASCII as they are).
type rjson struct {
	src []byte
	pos int
}

func (r *rjson) ws() {
	for r.pos < len(r.src) {
		switch r.src[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte (0 at the end).
func (r *rjson) peek() byte {
	r.ws()
	if r.pos >= len(r.src) {
		return 0
	}
	return r.src[r.pos]
}

// value writes the next value to dst, or skips it when dst is nil.
func (r *rjson) value(dst *bytes.Buffer) error {
	switch c := r.peek(); {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		r.pos++
		writeByte(dst, c)
		if r.peek() == end {
			r.pos++
			writeByte(dst, end)
			return nil
		}
		for {
			if c == '{' {
				if r.peek() != '"' {
					return errNotJSON
				}
				if err := r.str(dst); err != nil {
					return err
				}
				if r.peek() != ':' {
					return errNotJSON
				}
				r.pos++
				writeByte(dst, ':')
			}
			if err := r.value(dst); err != nil {
				return err
			}
			switch r.peek() {
			case ',':
				r.pos++
				writeByte(dst, ',')
			case end:
				r.pos++
				writeByte(dst, end)
				return nil
			default:
				return errNotJSON
			}
		}
	case c == '"':
		return r.str(dst)
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
		start := r.pos
		for r.pos < len(r.src) && isLiteral(r.src[r.pos]) {
			r.pos++
		}
		if dst != nil {
			dst.Write(r.src[start:r.pos])
		}
		return nil
	}
	return errNotJSON
}

func isLiteral(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'E'
}

func writeByte(dst *bytes.Buffer, c byte) {
	if dst != nil {
		dst.WriteByte(c)
	}
}

// strEnd finds the string starting at r.pos: the index of its closing
// quote, and whether it holds no escape or control character (so that it
// is written as it is).
func (r *rjson) strEnd() (int, bool, error) {
	plain := true
	for i := r.pos + 1; i < len(r.src); i++ {
		switch c := r.src[i]; {
		case c == '"':
			return i, plain, nil
		case c == '\\':
			plain = false
			i++
		case c < 0x20:
			plain = false
		}
	}
	return 0, false, errNotJSON
}

// str writes the string at r.pos.
func (r *rjson) str(dst *bytes.Buffer) error {
	end, plain, err := r.strEnd()
	if err != nil {
		return err
	}
	start := r.pos
	r.pos = end + 1
	switch {
	case dst == nil:
	case plain:
		dst.Write(r.src[start:r.pos])
	default:
		var s string
		if err := json.Unmarshal(r.src[start:r.pos], &s); err != nil {
			return errNotJSON
		}
		writeRubyString(dst, s)
	}
	return nil
}

// key returns the string at r.pos, decoded.
func (r *rjson) key() (string, error) {
	end, plain, err := r.strEnd()
	if err != nil {
		return "", err
	}
	start := r.pos
	r.pos = end + 1
	if plain {
		return string(r.src[start+1 : end]), nil
	}
	var s string
	if err := json.Unmarshal(r.src[start:r.pos], &s); err != nil {
		return "", errNotJSON
	}
	return s, nil
}

// writeRubyString writes s as Ruby's JSON generator does: only '"', '\'
// and control characters are escaped.
func writeRubyString(b *bytes.Buffer, s string) {
	const hexdig = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexdig[c>>4])
				b.WriteByte(hexdig[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}
