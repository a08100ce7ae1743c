package schema

import "testing"

// TestDecodedEventsCarryEnvelope checks that every event type Decode knows
// implements Event, which the sidecar relies on to read at_ms and type
// without a switch over all types.
func TestDecodedEventsCarryEnvelope(t *testing.T) {
	for _, typ := range []Type{
		TypeRunStarted, TypeJobStarted, TypeShStarted, TypeShOutput,
		TypeShFinished, TypeLog, TypeJobFinished, TypeRunFinished,
	} {
		ev, err := Decode([]byte(`{"at_ms":42,"type":"` + string(typ) + `"}`))
		if err != nil {
			t.Fatalf("Decode(%s): %v", typ, err)
		}
		e, ok := ev.(Event)
		if !ok {
			t.Errorf("%T does not implement Event", ev)
			continue
		}
		if got := e.EventEnvelope(); got.Type != typ || got.AtMs != 42 {
			t.Errorf("%s envelope = %+v, want type %s at 42", typ, got, typ)
		}
	}
}
