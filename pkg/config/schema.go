package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Key describes one configuration key of a program, derived from the struct
// tags of its config type:
//
//	mapstructure:"name"  the key (nested structs give dotted keys)
//	flag:"name[,s]"      the command-line flag (optional) and its shorthand
//	doc:"text"           the description for the config table and flag usage
type Key struct {
	Name    string // dotted key, e.g. "log.level"
	Flag    string // flag name, "" when the key has no flag
	Short   string // flag shorthand
	Env     string // environment variable
	Doc     string
	Default string // the default, formatted for people
	Type    reflect.Type
	// Open is set for map-typed keys, whose sub-keys are free-form.
	Open  bool
	index []int
}

var (
	pathType     = reflect.TypeOf(Path(""))
	secretType   = reflect.TypeOf(Secret(""))
	durationType = reflect.TypeOf(time.Duration(0))
)

// keysOf lists the keys of config type t (a struct), with defaults taken from
// def (a value of type t).
func keysOf(prefix string, t reflect.Type, def reflect.Value) []Key {
	var keys []Key
	walk(t, def, nil, "", func(k Key) {
		k.Env = envName(prefix, k.Name)
		keys = append(keys, k)
	})
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	return keys
}

func walk(t reflect.Type, v reflect.Value, index []int, dotted string, emit func(Key)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := fieldKey(f)
		if !ok {
			continue
		}
		full := name
		if dotted != "" {
			full = dotted + "." + name
		}
		idx := append(append([]int(nil), index...), i)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			walk(f.Type, fv, idx, full, emit)
			continue
		}
		flag, short, _ := strings.Cut(f.Tag.Get("flag"), ",")
		emit(Key{
			Name: full, Flag: flag, Short: short, Doc: f.Tag.Get("doc"),
			Default: formatDefault(fv), Type: f.Type, Open: f.Type.Kind() == reflect.Map,
			index: idx,
		})
	}
}

func formatDefault(v reflect.Value) string {
	switch {
	case v.Type() == secretType:
		if v.String() == "" {
			return ""
		}
		return "(secret)"
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			return ""
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	case v.Kind() == reflect.Map:
		if v.Len() == 0 {
			return ""
		}
	}
	return fmt.Sprint(v.Interface())
}

// fieldKey is the config key of struct field f as mapstructure decodes it
// (its tag, else its lower-cased name); ok is false for fields not decoded.
func fieldKey(f reflect.StructField) (name string, ok bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, _ = strings.Cut(f.Tag.Get("mapstructure"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return name, true
}

// envName is the environment variable of key for a program prefix:
// QVMRD + "log.level" → QVMRD_LOG_LEVEL.
func envName(prefix, key string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return prefix + "_" + strings.ToUpper(r.Replace(key))
}

// unknownKeys returns the dotted keys of m that type t does not have. Map-typed
// fields accept any sub-key; slices of structs are checked element by element.
func unknownKeys(t reflect.Type, m map[string]any, dotted string) []string {
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		if name, ok := fieldKey(t.Field(i)); ok {
			fields[name] = t.Field(i)
		}
	}
	var bad []string
	for k, val := range m {
		full := k
		if dotted != "" {
			full = dotted + "." + k
		}
		f, ok := fields[strings.ToLower(k)]
		if !ok {
			bad = append(bad, full)
			continue
		}
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			if sub, ok := val.(map[string]any); ok {
				bad = append(bad, unknownKeys(ft, sub, full)...)
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			if items, ok := val.([]any); ok {
				for i, it := range items {
					if sub, ok := it.(map[string]any); ok {
						bad = append(bad, unknownKeys(ft.Elem(), sub, fmt.Sprintf("%s[%d]", full, i))...)
					}
				}
			}
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			if sub, ok := val.(map[string]any); ok {
				for mk, mv := range sub {
					if mm, ok := mv.(map[string]any); ok {
						bad = append(bad, unknownKeys(ft.Elem(), mm, full+"."+mk)...)
					}
				}
			}
		}
	}
	sort.Strings(bad)
	return bad
}
