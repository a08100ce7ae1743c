package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// maxOutputDepth bounds how deeply outputs nest. Real outputs are a few
// levels deep, and the bound turns a list or dict that contains itself
// into an error instead of endless recursion.
const maxOutputDepth = 64

// toJSON converts a Starlark value from a run function's outputs into a
// value that encoding/json writes: None, bool, int (within int64), float,
// string, list, tuple, dict with string keys, and struct, nested at most
// maxOutputDepth levels. path names the value in error messages.
func toJSON(v starlark.Value, path string) (any, error) {
	return toJSONDepth(v, path, 0)
}

func toJSONDepth(v starlark.Value, path string, depth int) (any, error) {
	if depth > maxOutputDepth {
		return nil, fmt.Errorf("nested deeper than %d levels at %s; a list or dict that contains itself cannot be an output", maxOutputDepth, truncatePath(path))
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		i, ok := x.Int64()
		if !ok {
			return nil, fmt.Errorf("output %s: integer %s does not fit in 64 bits", path, x)
		}
		return i, nil
	case starlark.Float:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("output %s: %s has no JSON form", path, x)
		}
		return f, nil
	case starlark.String:
		return string(x), nil
	case *starlark.List, starlark.Tuple:
		seq := x.(starlark.Indexable)
		out := make([]any, seq.Len())
		for i := range seq.Len() {
			elem, err := toJSONDepth(seq.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = elem
		}
		return out, nil
	case *starlark.Dict:
		out := make(map[string]any, x.Len())
		for _, item := range x.Items() {
			key, ok := starlark.AsString(item[0])
			if !ok {
				return nil, fmt.Errorf("output %s: key %s is a %s, want a string", path, item[0], item[0].Type())
			}
			elem, err := toJSONDepth(item[1], fmt.Sprintf("%s[%q]", path, key), depth+1)
			if err != nil {
				return nil, err
			}
			out[key] = elem
		}
		return out, nil
	case *starlarkstruct.Struct:
		out := map[string]any{}
		for _, name := range x.AttrNames() {
			field, err := x.Attr(name)
			if err != nil {
				return nil, fmt.Errorf("output %s.%s: %w", path, name, err)
			}
			elem, err := toJSONDepth(field, path+"."+name, depth+1)
			if err != nil {
				return nil, err
			}
			out[name] = elem
		}
		return out, nil
	default:
		return nil, fmt.Errorf("output %s: a %s has no JSON form; return strings, numbers, bools, None, lists and dicts", path, v.Type())
	}
}

// truncatePath shortens a deep output path for a message.
func truncatePath(path string) string {
	const keep = 60
	if len(path) <= keep {
		return path
	}
	return path[:keep] + "…"
}

// fromJSON converts a value decoded by encoding/json with UseNumber into a
// Starlark value: objects become dicts, arrays lists.
func fromJSON(v any) (starlark.Value, error) {
	switch x := v.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(x), nil
	case string:
		return starlark.String(x), nil
	case json.Number:
		if i, ok := new(big.Int).SetString(string(x), 10); ok {
			return starlark.MakeBigInt(i), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("convert number %s: %w", x, err)
		}
		return starlark.Float(f), nil
	case float64:
		return starlark.Float(x), nil
	case []any:
		elems := make([]starlark.Value, 0, len(x))
		for _, e := range x {
			sv, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			elems = append(elems, sv)
		}
		return starlark.NewList(elems), nil
	case map[string]any:
		d := starlark.NewDict(len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			sv, err := fromJSON(x[k])
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(starlark.String(k), sv); err != nil {
				return nil, err
			}
		}
		return d, nil
	default:
		return nil, fmt.Errorf("convert %T to a Starlark value: unsupported type", v)
	}
}
