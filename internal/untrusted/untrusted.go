// Package untrusted makes strings that come from outside the tool safe to
// show: process names, cgroup paths and interface names, which any user
// who can name a process, a delegated cgroup or a network interface
// controls. On a terminal, a control character can move the cursor,
// retitle the window or overwrite a row, and a bidi override can reorder
// what is shown; in a Prometheus label, invalid UTF-8 fails the scrape.
// Every output of such a string goes through this package.
package untrusted

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// hostile reports whether r must not reach an output raw: the C0 and C1
// control characters, DEL, and the format characters (Unicode category
// Cf: bidi overrides and isolates, zero-width characters, soft hyphen).
func hostile(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// Clean reports whether s is valid UTF-8 without a hostile character, so
// that Visible returns it unchanged.
func Clean(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || hostile(r) {
			return false
		}
		i += size
	}
	return true
}

// Visible returns s with every hostile character and every byte of
// invalid UTF-8 written as an escape that shows it without its effect:
// \x1b for ESC, \u202e for a right-to-left override, \xff for a byte that
// is not UTF-8, as Go writes them. Everything else, a backslash included, passes unchanged,
// so that ordinary names (systemd's \x2d escapes among them) read as
// before. The result is valid UTF-8.
func Visible(s string) string {
	if Clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r < 0x80 && hostile(r):
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case hostile(r) && r > 0xFFFF:
			b.WriteString(`\U`)
			b.WriteString(hex4(r >> 16))
			b.WriteString(hex4(r & 0xFFFF))
		case hostile(r):
			b.WriteString(`\u`)
			b.WriteString(hex4(r))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Field is s as a field of a plain-text line whose fields are separated
// by ", " and named by "name: ": s itself when it is clean and holds no
// ", ", ": " or quote, else s Go-quoted, so that no name can forge a
// field or break the line. strconv.Unquote gives s back.
func Field(s string) string {
	if Clean(s) && !strings.Contains(s, ", ") && !strings.Contains(s, ": ") && !strings.ContainsRune(s, '"') {
		return s
	}
	return strconv.Quote(s)
}

// EscapeJSON rewrites the hostile characters that encoding/json leaves
// raw in its output (DEL, the C1 controls and the format characters; it
// already escapes C0 and replaces invalid UTF-8) as \u escapes, which
// decode to the same string. They can only stand inside JSON strings, so
// the whole encoded document can be rewritten.
func EscapeJSON(doc []byte) []byte {
	for i := 0; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r >= 0x7f && hostile(r) {
			return escapeJSONFrom(doc, i)
		}
		i += size
	}
	return doc
}

func escapeJSONFrom(doc []byte, from int) []byte {
	out := append(make([]byte, 0, len(doc)+16), doc[:from]...)
	for i := from; i < len(doc); {
		r, size := utf8.DecodeRune(doc[i:])
		if r >= 0x7f && hostile(r) {
			out = append(out, escapeRune(r)...)
		} else {
			out = append(out, doc[i:i+size]...)
		}
		i += size
	}
	return out
}

// escapeRune writes r as JSON does: \uXXXX, or a UTF-16 surrogate pair
// beyond the basic plane.
func escapeRune(r rune) string {
	if r > 0xFFFF {
		hi, lo := utf16.EncodeRune(r)
		return `\u` + hex4(hi) + `\u` + hex4(lo)
	}
	return `\u` + hex4(r)
}

const digits = "0123456789abcdef"

func hex2(c byte) string { return string([]byte{digits[c>>4], digits[c&15]}) }

func hex4(r rune) string {
	return string([]byte{digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15]})
}
