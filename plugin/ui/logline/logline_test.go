package logline

import (
	"strings"
	"testing"
)

func TestHTML(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string
	}{
		{"plain text is unchanged", "ok  example 0.2s", "ok  example 0.2s"},
		{"markup in output is escaped", `<script>alert("x")</script> & 'q'`, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;q&#39;"},
		{"escaped text inside a colour", "\x1b[31m<b>\x1b[0m", `<span class="fg1">&lt;b&gt;</span>`},
		{"basic foreground colour", "\x1b[32mgreen\x1b[0m plain", `<span class="fg2">green</span> plain`},
		{"bright colours map to classes 8 to 15", "\x1b[91mred\x1b[39m", `<span class="fg9">red</span>`},
		{"background colour", "\x1b[44mblue\x1b[49m", `<span class="bg4">blue</span>`},
		{"bold and colour together", "\x1b[1;33mwarn\x1b[22m x", `<span class="fg3 b">warn</span><span class="fg3"> x</span>`},
		{"256 colour low entry uses a class", "\x1b[38;5;1mr", `<span class="fg1">r</span>`},
		{"256 colour cube entry", "\x1b[38;5;208mo", `<span style="color:#ff8700">o</span>`},
		{"256 colour grey entry", "\x1b[48;5;240mg", `<span style="background-color:#585858">g</span>`},
		{"truecolor foreground", "\x1b[38;2;10;20;30mt", `<span style="color:#0a141e">t</span>`},
		{"truecolor with colons and colour space", "\x1b[38:2::255:0:128mt", `<span style="color:#ff0080">t</span>`},
		{"truecolor followed by bold in one sequence", "\x1b[38;2;1;2;3;1mt", `<span class="b" style="color:#010203">t</span>`},
		{"reset with empty parameters", "\x1b[31ma\x1b[mb", `<span class="fg1">a</span>b`},
		{"invert swaps colours", "\x1b[7;31mi", `<span class="inv bg1">i</span>`},
		{"italic underline strike faint", "\x1b[2;3;4;9mx", `<span class="dim i u s">x</span>`},
		{"carriage return keeps the last state", "10%\r50%\r100% done", "100% done"},
		{"carriage return overwrites only what it rewrites", "downloading 10%\rDONE", "DONEloading 10%"},
		{"trailing carriage return keeps the line", "windows line\r", "windows line"},
		{"erase in line after carriage return", "progress 99%\r\x1b[Kfinished", "finished"},
		{"backspace moves back one cell", "ab\bc", "ac"},
		{"invalid UTF-8 becomes replacement characters", "bad \xff\xfe end", "bad \ufffd\ufffd end"},
		{"invalid UTF-8 inside a colour", "\x1b[31m\xffx", "<span class=\"fg1\">\ufffdx</span>"},
		{"private sequences are dropped", "\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"},
		{"window title is dropped", "\x1b]0;title\x07text", "text"},
		{"hyperlinks keep only their text", "\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"bell and NUL are dropped", "a\x07b\x00c", "abc"},
		{"unterminated sequence ends the line", "abc\x1b[31", "abc"},
		{"character set selection is dropped", "\x1b(Bplain", "plain"},
		{"tab is kept", "a\tb", "a\tb"},
		{"out of range palette index is ignored", "\x1b[38;5;300mx", "x"},
		{"cursor forward pads with spaces", "a\x1b[3Cb", "a   b"},
		{"empty line", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HTML(tt.line)
			if got != tt.want {
				t.Errorf("HTML(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestHTMLHugeCursorMoveIsBounded(t *testing.T) {
	got := HTML("a\x1b[999999999Cb")
	if len(got) > maxColumns+10 {
		t.Errorf("len(HTML) = %d, want at most %d", len(got), maxColumns+10)
	}
}

func FuzzHTML(f *testing.F) {
	for _, s := range []string{"\x1b[38;2;1;2;3m<x>", "a\rb\x1b[K", "\x1b]8;;u\x1b\\t", "\xff\x1b[", "\x1b[38:5:9m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := HTML(line)
		// Every '<' in the output must open or close one of our spans.
		rest := got
		for {
			i := strings.IndexByte(rest, '<')
			if i < 0 {
				break
			}
			rest = rest[i:]
			if !strings.HasPrefix(rest, "<span") && !strings.HasPrefix(rest, "</span>") {
				t.Fatalf("HTML(%q) = %q contains markup it did not build", line, got)
			}
			rest = rest[1:]
		}
	})
}

func BenchmarkHTMLPlain(b *testing.B) {
	line := "ok  github.com/octavo-ci/octavo/plugin/store 0.231s coverage: 71.2% of statements"
	for b.Loop() {
		HTML(line)
	}
}

func BenchmarkHTMLColoured(b *testing.B) {
	line := "\x1b[1;32mPASS\x1b[0m TestSomething (0.00s) \x1b[38;5;244m" + strings.Repeat("x", 60) + "\x1b[0m"
	for b.Loop() {
		HTML(line)
	}
}
