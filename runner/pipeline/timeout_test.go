package pipeline

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
)

// TestParseTimeout covers the timeout forms of job() and ctx.sh. A large
// negative number of seconds used to overflow into a positive duration of
// centuries and was accepted.
func TestParseTimeout(t *testing.T) {
	tests := []struct {
		name    string
		value   starlark.Value
		want    time.Duration
		wantErr string
	}{
		{"None means no limit", starlark.None, 0, ""},
		{"an int is seconds", starlark.MakeInt(90), 90 * time.Second, ""},
		{"a float is seconds", starlark.Float(0.5), 500 * time.Millisecond, ""},
		{"a string is a Go duration", starlark.String("1m"), time.Minute, ""},
		{"zero is rejected", starlark.MakeInt(0), 0, "want a positive duration"},
		{"a negative int is rejected", starlark.MakeInt(-1), 0, "want a positive duration"},
		{"a negative int that overflows is rejected", starlark.MakeInt64(-10_000_000_000), 0, "want a positive duration"},
		{"a negative int beyond 64 bits is rejected", starlark.MakeBigInt(bigPower(100, true)), 0, "want a positive duration"},
		{"an int beyond 64 bits is too large", starlark.MakeBigInt(bigPower(100, false)), 0, "too large"},
		{"a negative float that overflows is rejected", starlark.Float(-1e300), 0, "want a positive"},
		{"a negative string is rejected", starlark.String("-5s"), 0, "want a positive duration"},
		{"a string without a unit is rejected", starlark.String("10"), 0, "want seconds or a duration"},
		{"a list is rejected", starlark.NewList(nil), 0, "invalid timeout of type list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTimeout(tt.value)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("ParseTimeout(%s) = %s, %v; want %s", tt.value, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTimeout(%s) = %s, %v; want an error containing %q", tt.value, got, err, tt.wantErr)
			}
		})
	}
}

// bigPower returns 10**exp, negated when negative.
func bigPower(exp int64, negative bool) *big.Int {
	n := new(big.Int).Exp(big.NewInt(10), big.NewInt(exp), nil)
	if negative {
		n.Neg(n)
	}
	return n
}
