// Package logline renders one line of pipeline output as HTML for the status
// page: ANSI SGR colours and attributes become styled spans, carriage-return
// progress updates collapse to the state a terminal would show, other control
// sequences are dropped, and every character of the output is HTML-escaped.
//
// Each line is rendered on its own, starting from the default style, so a
// line renders the same whether it arrived live or was loaded later. A colour
// set on one line and left open does not carry over to the next.
//
// NOTE: github.com/buildkite/terminal-to-html/v3 was considered: its newest
// release that builds on Go 1.26.8 (v3.16.8) maps 24-bit colours to the
// nearest 16-colour class and emulates a whole screen, so this package keeps
// its own small parser instead.
package logline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxColumns bounds the cursor so that a forward-move sequence such as
// ESC[99999C in untrusted output cannot make one line allocate megabytes.
const maxColumns = 10000

// colorKind selects which of a colour's fields is meaningful.
type colorKind uint8

const (
	colorDefault colorKind = iota
	colorPalette           // index 0-255; 0-15 render as theme classes
	colorRGB
)

type color struct {
	kind    colorKind
	index   uint8
	r, g, b uint8
}

// style is the SGR state of one cell. The zero value is the terminal default.
type style struct {
	fg, bg                                         color
	bold, faint, italic, underline, strike, invert bool
}

type cell struct {
	r  rune
	st style
}

// HTML renders line as escaped HTML. It never returns markup other than
// <span> elements with class and style attributes it builds itself.
func HTML(line string) string {
	if plain(line) {
		return escape(line)
	}
	return render(parse(line))
}

// plain reports whether line has no control characters and is valid UTF-8,
// so that escaping alone renders it. Most log lines take this path.
func plain(line string) bool {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			return utf8.ValidString(line[i:]) && !hasC1(line[i:])
		}
	}
	return true
}

func hasC1(s string) bool {
	for _, r := range s {
		if r >= 0x80 && r <= 0x9f {
			return true
		}
	}
	return false
}

// parse runs line through a one-line terminal: characters overwrite the cells
// under the cursor, "\r" returns the cursor to column 0, and erase-in-line
// and cursor-movement sequences act on the cells. Invalid UTF-8 bytes become
// U+FFFD.
func parse(line string) []cell {
	var (
		cells []cell
		col   int
		cur   style
	)
	put := func(r rune) {
		for len(cells) < col {
			cells = append(cells, cell{r: ' '})
		}
		if col < len(cells) {
			cells[col] = cell{r: r, st: cur}
		} else {
			cells = append(cells, cell{r: r, st: cur})
		}
		col++
	}

	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0x1b:
			i = escapeSequence(line, i, &cur, &cells, &col)
			continue
		case c == '\r':
			col = 0
		case c == '\b':
			if col > 0 {
				col--
			}
		case c == '\t':
			if col < maxColumns {
				put('\t')
			}
		case c < 0x20 || c == 0x7f:
			// Bell, NUL and other C0 controls have no visible form.
		default:
			r, size := utf8.DecodeRuneInString(line[i:])
			i += size
			if r >= 0x80 && r <= 0x9f {
				continue
			}
			if col < maxColumns {
				put(r)
			}
			continue
		}
		i++
	}
	return cells
}

// escapeSequence handles the sequence starting with ESC at line[i] and
// returns the index just after it. An unterminated sequence consumes the
// rest of the line.
func escapeSequence(line string, i int, cur *style, cells *[]cell, col *int) int {
	if i+1 >= len(line) {
		return len(line)
	}
	switch line[i+1] {
	case '[':
		j := i + 2
		for j < len(line) && line[j] >= 0x20 && line[j] <= 0x3f {
			j++
		}
		if j >= len(line) {
			return len(line)
		}
		final := line[j]
		if final < 0x40 || final > 0x7e {
			// A control character inside the sequence aborts it, as in
			// a terminal; the character itself is handled normally.
			return j
		}
		params := line[i+2 : j]
		csi(final, params, cur, cells, col)
		return j + 1
	case ']', 'P', '_', '^':
		// OSC, DCS, APC and PM strings end with BEL or ESC \. Their
		// content (window titles, hyperlinks) is not shown.
		for j := i + 2; j < len(line); j++ {
			if line[j] == 0x07 {
				return j + 1
			}
			if line[j] == 0x1b && j+1 < len(line) && line[j+1] == '\\' {
				return j + 2
			}
		}
		return len(line)
	default:
		// Two-byte sequences such as ESC 7 or ESC ( B.
		if line[i+1] == '(' || line[i+1] == ')' {
			return min(i+3, len(line))
		}
		return i + 2
	}
}

// csi applies one control sequence. Only SGR, erase in line and horizontal
// cursor movement change the line; the others are ignored.
func csi(final byte, params string, cur *style, cells *[]cell, col *int) {
	if strings.ContainsAny(params, "<=>?") {
		return // private sequences such as ESC[?25l
	}
	n := func(def int) int {
		v, err := strconv.Atoi(strings.SplitN(params, ";", 2)[0])
		if err != nil || v <= 0 {
			return def
		}
		return min(v, maxColumns)
	}
	switch final {
	case 'm':
		sgr(params, cur)
	case 'K':
		switch n(0) {
		case 0:
			if *col < len(*cells) {
				*cells = (*cells)[:*col]
			}
		case 1:
			for k := 0; k <= *col && k < len(*cells); k++ {
				(*cells)[k] = cell{r: ' '}
			}
		case 2:
			*cells = (*cells)[:0]
		}
	case 'G':
		*col = n(1) - 1
	case 'C':
		*col = min(*col+n(1), maxColumns)
	case 'D':
		*col = max(*col-n(1), 0)
	}
}

// sgr applies Select Graphic Rendition parameters. Both the semicolon form
// (38;5;n, 38;2;r;g;b) and the colon form (38:5:n, 38:2::r:g:b) of extended
// colours are accepted.
func sgr(params string, cur *style) {
	if params == "" {
		*cur = style{}
		return
	}
	fields := strings.Split(params, ";")
	for k := 0; k < len(fields); k++ {
		f := fields[k]
		if strings.Contains(f, ":") {
			sub := strings.Split(f, ":")
			code := atoi(sub[0])
			if code == 38 || code == 48 || code == 58 {
				if c, ok := extendedColor(sub[1:], true); ok {
					setExtended(code, c, cur)
				}
			} else if code == 4 && len(sub) > 1 {
				cur.underline = atoi(sub[1]) != 0
			}
			continue
		}

		code := atoi(f)
		switch {
		case code == 0:
			*cur = style{}
		case code == 1:
			cur.bold = true
		case code == 2:
			cur.faint = true
		case code == 3:
			cur.italic = true
		case code == 4:
			cur.underline = true
		case code == 7:
			cur.invert = true
		case code == 9:
			cur.strike = true
		case code == 22:
			cur.bold, cur.faint = false, false
		case code == 23:
			cur.italic = false
		case code == 24:
			cur.underline = false
		case code == 27:
			cur.invert = false
		case code == 29:
			cur.strike = false
		case code >= 30 && code <= 37:
			cur.fg = color{kind: colorPalette, index: uint8(code - 30)}
		case code == 39:
			cur.fg = color{}
		case code >= 40 && code <= 47:
			cur.bg = color{kind: colorPalette, index: uint8(code - 40)}
		case code == 49:
			cur.bg = color{}
		case code >= 90 && code <= 97:
			cur.fg = color{kind: colorPalette, index: uint8(code - 90 + 8)}
		case code >= 100 && code <= 107:
			cur.bg = color{kind: colorPalette, index: uint8(code - 100 + 8)}
		case code == 38 || code == 48 || code == 58:
			c, used, ok := extendedColorSemicolon(fields[k+1:])
			k += used
			if ok {
				setExtended(code, c, cur)
			}
		}
	}
}

func setExtended(code int, c color, cur *style) {
	switch code {
	case 38:
		cur.fg = c
	case 48:
		cur.bg = c
	}
	// 58 sets the underline colour, which is not rendered.
}

// extendedColorSemicolon reads "5;n" or "2;r;g;b" after a 38 or 48 and
// returns how many fields it used.
func extendedColorSemicolon(rest []string) (color, int, bool) {
	if len(rest) == 0 {
		return color{}, 0, false
	}
	switch atoi(rest[0]) {
	case 5:
		if len(rest) < 2 {
			return color{}, len(rest), false
		}
		c, ok := extendedColor(rest[:2], false)
		return c, 2, ok
	case 2:
		if len(rest) < 4 {
			return color{}, len(rest), false
		}
		c, ok := extendedColor(rest[:4], false)
		return c, 4, ok
	}
	return color{}, 1, false
}

// extendedColor parses ["5", n] or ["2", r, g, b]; in the colon form a
// colour-space id may stand before r, g and b.
func extendedColor(p []string, colon bool) (color, bool) {
	if len(p) == 0 {
		return color{}, false
	}
	switch atoi(p[0]) {
	case 5:
		if len(p) < 2 {
			return color{}, false
		}
		v := atoi(p[1])
		if v < 0 || v > 255 {
			return color{}, false
		}
		return color{kind: colorPalette, index: uint8(v)}, true
	case 2:
		rgb := p[1:]
		if colon && len(rgb) == 4 {
			rgb = rgb[1:]
		}
		if len(rgb) < 3 {
			return color{}, false
		}
		r, g, b := atoi(rgb[0]), atoi(rgb[1]), atoi(rgb[2])
		if r < 0 || r > 255 || g < 0 || g > 255 || b < 0 || b > 255 {
			return color{}, false
		}
		return color{kind: colorRGB, r: uint8(r), g: uint8(g), b: uint8(b)}, true
	}
	return color{}, false
}

// atoi returns -1 for anything but a small decimal number, and 0 for an
// empty parameter, which SGR treats as 0.
func atoi(s string) int {
	if s == "" {
		return 0
	}
	if len(s) > 6 {
		return -1
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return v
}

// render writes the cells as escaped text in spans, one span per run of
// cells with the same non-default style.
func render(cells []cell) string {
	var b strings.Builder
	for i := 0; i < len(cells); {
		st := cells[i].st
		j := i
		for j < len(cells) && cells[j].st == st {
			j++
		}
		open := openTag(st)
		b.WriteString(open)
		for _, c := range cells[i:j] {
			escapeRune(&b, c.r)
		}
		if open != "" {
			b.WriteString("</span>")
		}
		i = j
	}
	return b.String()
}

// openTag returns the <span> for st, or "" for the default style. Colours
// 0-15 become classes (fg1, bg4) so the page's theme picks the shades; other
// palette and 24-bit colours become inline hex colours.
func openTag(st style) string {
	if st == (style{}) {
		return ""
	}
	fg, bg := st.fg, st.bg
	var classes []string
	if st.invert {
		fg, bg = bg, fg
		classes = append(classes, "inv")
	}
	var css []string
	if c, ok := colorCSS(fg); ok {
		css = append(css, "color:"+c)
	} else if fg.kind == colorPalette {
		classes = append(classes, "fg"+strconv.Itoa(int(fg.index)))
	}
	if c, ok := colorCSS(bg); ok {
		css = append(css, "background-color:"+c)
	} else if bg.kind == colorPalette {
		classes = append(classes, "bg"+strconv.Itoa(int(bg.index)))
	}
	for _, a := range []struct {
		on   bool
		name string
	}{{st.bold, "b"}, {st.faint, "dim"}, {st.italic, "i"}, {st.underline, "u"}, {st.strike, "s"}} {
		if a.on {
			classes = append(classes, a.name)
		}
	}

	var b strings.Builder
	b.WriteString("<span")
	if len(classes) > 0 {
		b.WriteString(` class="` + strings.Join(classes, " ") + `"`)
	}
	if len(css) > 0 {
		b.WriteString(` style="` + strings.Join(css, ";") + `"`)
	}
	b.WriteString(">")
	return b.String()
}

// colorCSS returns a hex colour for 256-palette entries above 15 and for
// 24-bit colours, and false for the default and the 16 themed colours.
func colorCSS(c color) (string, bool) {
	switch {
	case c.kind == colorRGB:
		return fmt.Sprintf("#%02x%02x%02x", c.r, c.g, c.b), true
	case c.kind == colorPalette && c.index >= 16:
		r, g, b := palette256(c.index)
		return fmt.Sprintf("#%02x%02x%02x", r, g, b), true
	}
	return "", false
}

// palette256 returns the xterm RGB value of palette entries 16-255: a
// 6x6x6 colour cube followed by 24 grey steps.
func palette256(i uint8) (r, g, b uint8) {
	if i >= 232 {
		v := 8 + 10*(i-232)
		return v, v, v
	}
	levels := [6]uint8{0, 95, 135, 175, 215, 255}
	n := i - 16
	return levels[n/36], levels[(n/6)%6], levels[n%6]
}

func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		escapeRune(&b, r)
	}
	return b.String()
}

func escapeRune(b *strings.Builder, r rune) {
	switch r {
	case '&':
		b.WriteString("&amp;")
	case '<':
		b.WriteString("&lt;")
	case '>':
		b.WriteString("&gt;")
	case '"':
		b.WriteString("&#34;")
	case '\'':
		b.WriteString("&#39;")
	default:
		b.WriteRune(r)
	}
}
