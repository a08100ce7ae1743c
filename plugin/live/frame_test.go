package live

import (
	"bytes"
	"testing"
)

func TestTextFrameHeader(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		header []byte
	}{
		{"short payload has a one byte length", 125, []byte{0x81, 125}},
		{"medium payload has a 16 bit length", 126, []byte{0x81, 126, 0, 126}},
		{"largest 16 bit length", 0xffff, []byte{0x81, 126, 0xff, 0xff}},
		{"large payload has a 64 bit length", 0x10000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("x"), tt.size)
			got := textFrame(payload)
			if !bytes.Equal(got[:len(tt.header)], tt.header) {
				t.Errorf("header = % x, want % x", got[:len(tt.header)], tt.header)
			}
			if !bytes.Equal(got[len(tt.header):], payload) {
				t.Errorf("payload after the header differs (len %d, want %d)", len(got)-len(tt.header), tt.size)
			}
		})
	}
}
