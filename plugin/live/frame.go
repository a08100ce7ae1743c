package live

import "encoding/binary"

// textFrame returns payload as one unmasked, final websocket text frame
// (RFC 6455 section 5.2), the form a server sends. Building the frame here
// instead of in gorilla/websocket lets the hub frame an event once for all
// viewers and lets a viewer's writer send a whole batch with one write.
func textFrame(payload []byte) []byte {
	const finText = 0x81 // FIN bit and opcode 1 (text)
	n := len(payload)
	var frame []byte
	switch {
	case n < 126:
		frame = make([]byte, 2, 2+n)
		frame[1] = byte(n)
	case n <= 0xffff:
		frame = make([]byte, 4, 4+n)
		frame[1] = 126
		binary.BigEndian.PutUint16(frame[2:], uint16(n))
	default:
		frame = make([]byte, 10, 10+n)
		frame[1] = 127
		binary.BigEndian.PutUint64(frame[2:], uint64(n))
	}
	frame[0] = finText
	return append(frame, payload...)
}
