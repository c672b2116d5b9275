package resque

import (
	"bytes"
	"encoding/json"
	"errors"
)

// A small navigator over JSON text that has already been validated with
// json.Valid. It finds the few values the tool needs (an id, a class, an
// enqueue time) by skipping over everything else, without building maps:
// decoding every payload of a million-job queue into maps cost ten times
// more than reading it from Redis.

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// indexObject appends to fields (which must not be nil) the fields of the
// object starting at b[i] == '{', in order. A field whose key is not
// followed by ':' ends the walk, and so does a value not followed by ',':
// what comes after is not an object's field.
func indexObject(fields []fieldRef, b []byte, i int) []fieldRef {
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		end := skipString(b, i)
		ks, ke := i+1, end-1
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return fields
		}
		i = skipSpace(b, i+1)
		fields = append(fields, fieldRef{ks: ks, ke: ke, val: i})
		i = skipSpace(b, skipValue(b, i))
		if i >= len(b) || b[i] != ',' {
			return fields
		}
		i = skipSpace(b, i+1)
	}
	return fields
}

// arrayElement returns the start of element n of the array at b[i] == '[', or -1.
func arrayElement(b []byte, i, n int) int {
	i = skipSpace(b, i+1)
	if i >= len(b) || b[i] == ']' {
		return -1
	}
	for k := 0; ; k++ {
		if k == n {
			return i
		}
		i = skipSpace(b, skipValue(b, i))
		if i >= len(b) || b[i] != ',' {
			return -1
		}
		i = skipSpace(b, i+1)
	}
}

func keyEquals(raw []byte, key string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == key
	}
	var s string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	return json.Unmarshal(quoted, &s) == nil && s == key
}

// unquote decodes a JSON string value.
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
