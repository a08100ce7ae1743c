package pipeline

import (
	"fmt"
	"math"
	"time"

	"go.starlark.net/starlark"
)

// ParseTimeout converts a Starlark timeout value: None means no limit (0),
// an int or float is a number of seconds, and a string is a Go duration
// such as "90s" or "10m". It rejects values that are not positive.
func ParseTimeout(v starlark.Value) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case starlark.NoneType:
		return 0, nil
	case starlark.Int:
		// The sign is checked first: multiplying a large negative count
		// of seconds would overflow into a positive duration.
		if x.Sign() <= 0 {
			return 0, fmt.Errorf("invalid timeout %s: want a positive duration", x)
		}
		secs, ok := x.Int64()
		if !ok || secs > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("invalid timeout %s: too large", x)
		}
		d = time.Duration(secs) * time.Second
	case starlark.Float:
		// Go gives an implementation-dependent result when a float is out
		// of range for the integer it is converted to, so both ends are
		// checked first.
		if math.IsNaN(float64(x)) || float64(x) <= 0 || float64(x) > float64(math.MaxInt64)/float64(time.Second) {
			return 0, fmt.Errorf("invalid timeout %s: want a positive number of seconds", x)
		}
		d = time.Duration(float64(x) * float64(time.Second))
	case starlark.String:
		parsed, err := time.ParseDuration(string(x))
		if err != nil {
			return 0, fmt.Errorf("invalid timeout %s: want seconds or a duration such as \"90s\" or \"10m\"", x)
		}
		d = parsed
	default:
		return 0, fmt.Errorf("invalid timeout of type %s: want seconds (int or float) or a duration string such as \"10m\"", v.Type())
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid timeout %s: want a positive duration", v)
	}
	return d, nil
}
