package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// ErrNoConfig is wrapped when a config file that was asked for explicitly
// (--config or PREFIX_CONFIG) does not exist. The default system and user files
// are optional.
var ErrNoConfig = errors.New("config file not found")

// ConfigFlag is the flag every program has to name its config file.
const ConfigFlag = "config"

// Spec describes the configuration of one program.
type Spec[T any] struct {
	// Program is the binary's name.
	Program string
	// EnvPrefix prefixes its environment variables: PREFIX_LOG_LEVEL.
	EnvPrefix string
	// SystemFile is the system-wide YAML file (optional on disk).
	SystemFile Path
	// UserFile is the per-user YAML file, for programs run by users ("" = none).
	UserFile Path
	// Defaults returns the built-in configuration.
	Defaults func() T
}

// Description is a program's configuration schema, independent of its type.
type Description struct {
	Program    string
	EnvPrefix  string
	SystemFile Path
	UserFile   Path
	Keys       []Key
}

// Describer is implemented by every Spec; the config table and the checks of
// the shipped files are built from it.
type Describer interface {
	Describe() Description
	CheckFile(path string) error
}

// Describe returns the schema of s.
func (s Spec[T]) Describe() Description {
	def := s.Defaults()
	return Description{
		Program: s.Program, EnvPrefix: s.EnvPrefix, SystemFile: s.SystemFile, UserFile: s.UserFile,
		Keys: keysOf(s.EnvPrefix, reflect.TypeOf(def), reflect.ValueOf(def)),
	}
}

// Loaded tells where a configuration came from.
type Loaded struct {
	// Files lists the config files read, in order.
	Files []string
}

// AddFlags registers the program's flags on fs: --config plus one flag per key
// that has a flag tag. Usage texts name the environment variable.
func (s Spec[T]) AddFlags(fs *pflag.FlagSet) {
	d := s.Describe()
	fs.String(ConfigFlag, "", fmt.Sprintf("config file (default %s, then %s) [$%s_CONFIG]",
		s.SystemFile, orNone(s.UserFile), s.EnvPrefix))
	def := reflect.ValueOf(s.Defaults())
	for _, k := range d.Keys {
		if k.Flag == "" {
			continue
		}
		usage := strings.TrimSpace(k.Doc + " [$" + k.Env + "]")
		dv := def.FieldByIndex(k.index)
		switch {
		case k.Type == durationType:
			fs.DurationP(k.Flag, k.Short, time.Duration(dv.Int()), usage)
		case k.Type.Kind() == reflect.Bool:
			fs.BoolP(k.Flag, k.Short, dv.Bool(), usage)
		case k.Type.Kind() == reflect.Int:
			fs.IntP(k.Flag, k.Short, int(dv.Int()), usage)
		case k.Type.Kind() == reflect.Int64:
			fs.Int64P(k.Flag, k.Short, dv.Int(), usage)
		case k.Type.Kind() == reflect.Slice && k.Type.Elem().Kind() == reflect.String:
			def := make([]string, dv.Len())
			for i := range def {
				def[i] = dv.Index(i).String()
			}
			fs.StringSliceP(k.Flag, k.Short, def, usage)
		case k.Type.Kind() == reflect.String:
			fs.StringP(k.Flag, k.Short, dv.String(), usage)
		default:
			panic(fmt.Sprintf("config: key %s: no flag support for %s", k.Name, k.Type))
		}
	}
}

func orNone(p Path) string {
	if p == "" {
		return "no user file"
	}
	return string(p)
}

// Load builds the configuration: defaults, system file, user file,
// environment, then the flags of fs that were set (fs may be nil).
func (s Spec[T]) Load(fs *pflag.FlagSet) (T, *Loaded, error) {
	var zero T
	def := s.Defaults()
	typ := reflect.TypeOf(def)
	keys := keysOf(s.EnvPrefix, typ, reflect.ValueOf(def))
	loaded := &Loaded{}

	v := viper.New()
	for _, k := range keys {
		v.SetDefault(k.Name, reflect.ValueOf(def).FieldByIndex(k.index).Interface())
	}

	files, err := s.files(fs)
	if err != nil {
		return zero, nil, err
	}
	for _, f := range files {
		settings, err := readFile[T](f.path)
		if errors.Is(err, os.ErrNotExist) && !f.required {
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			return zero, nil, fmt.Errorf("%s: %w", f.path, ErrNoConfig)
		}
		if err != nil {
			return zero, nil, err
		}
		if err := v.MergeConfigMap(settings); err != nil {
			return zero, nil, fmt.Errorf("%s: %w", f.path, err)
		}
		loaded.Files = append(loaded.Files, f.path)
	}

	if err := s.bindEnv(v, keys); err != nil {
		return zero, nil, err
	}
	if fs != nil {
		for _, k := range keys {
			if fl := fs.Lookup(k.Flag); k.Flag != "" && fl != nil {
				if err := v.BindPFlag(k.Name, fl); err != nil {
					return zero, nil, err
				}
			}
		}
	}

	out := reflect.New(typ)
	if err := decode(v.AllSettings(), out.Interface(), true); err != nil {
		return zero, nil, fmt.Errorf("%s configuration: %w", s.Program, err)
	}
	relocate(out.Elem(), os.Getenv(RootEnv), os.Getenv("HOME"))
	cfg := out.Elem().Interface().(T)
	if val, ok := any(&cfg).(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return zero, nil, fmt.Errorf("%s configuration: %w", s.Program, err)
		}
	}
	return cfg, loaded, nil
}

type configFile struct {
	path     string
	required bool
}

// files returns the config files to read: an explicit one (flag, then
// environment) replaces both defaults.
func (s Spec[T]) files(fs *pflag.FlagSet) ([]configFile, error) {
	explicit := os.Getenv(s.EnvPrefix + "_CONFIG")
	if fs != nil {
		if fl := fs.Lookup(ConfigFlag); fl != nil && fl.Changed {
			explicit = fl.Value.String()
		}
	}
	if explicit != "" {
		return []configFile{{path: string(ResolveEnv(Path(explicit))), required: true}}, nil
	}
	out := []configFile{{path: string(ResolveEnv(s.SystemFile))}}
	if s.UserFile != "" {
		out = append(out, configFile{path: string(ResolveEnv(s.UserFile))})
	}
	return out, nil
}

// readFile reads one YAML file and checks it strictly against T: unknown keys
// and values of the wrong type are errors naming the file and the key.
func readFile[T any](path string) (map[string]any, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	fv := viper.New()
	fv.SetConfigFile(path)
	fv.SetConfigType("yaml")
	if err := fv.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	settings := fv.AllSettings()
	var zero T
	if bad := unknownKeys(reflect.TypeOf(zero), settings, ""); len(bad) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s", path, strings.Join(quoteAll(bad), ", "))
	}
	if err := decode(settings, new(T), false); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return settings, nil
}

// bindEnv makes PREFIX_KEY variables override files, and refuses a variable
// with the program's prefix that names no key (a typo would otherwise be
// silently ignored).
func (s Spec[T]) bindEnv(v *viper.Viper, keys []Key) error {
	byEnv := map[string]Key{}
	for _, k := range keys {
		byEnv[k.Env] = k
		if err := v.BindEnv(k.Name, k.Env); err != nil {
			return err
		}
	}
	var unknown []string
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, s.EnvPrefix+"_") || name == s.EnvPrefix+"_CONFIG" {
			continue
		}
		k, ok := byEnv[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		// Check the type now, so the error can name the variable.
		var zero T
		probe := nest(k.Name, val)
		if err := decode(probe, &zero, true); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown environment variable %s (not a %s setting)", strings.Join(unknown, ", "), s.Program)
	}
	return nil
}

func nest(dotted string, val any) map[string]any {
	parts := strings.Split(dotted, ".")
	m := map[string]any{parts[len(parts)-1]: val}
	for i := len(parts) - 2; i >= 0; i-- {
		m = map[string]any{parts[i]: m}
	}
	return m
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// decode maps settings onto out. Files are decoded strictly (a string is not a
// number); environment values and flags are strings, so the merged result is
// decoded weakly once every file has passed the strict check.
func decode(in map[string]any, out any, weak bool) error {
	dc := &mapstructure.DecoderConfig{
		Result:           out,
		WeaklyTypedInput: weak,
		ErrorUnused:      !weak,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook(weak),
			mapstructure.StringToSliceHookFunc(","),
		),
	}
	d, err := mapstructure.NewDecoder(dc)
	if err != nil {
		return err
	}
	return d.Decode(in)
}

// durationHook parses "30s"; in strict mode a bare number is refused, because
// mapstructure would take 30 as 30ns.
func durationHook(weak bool) mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if to != durationType {
			return data, nil
		}
		switch x := data.(type) {
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return nil, fmt.Errorf("invalid duration %q (use a unit, e.g. 30s)", x)
			}
			return d, nil
		case time.Duration:
			return x, nil
		}
		if !weak {
			return nil, fmt.Errorf("duration needs a unit (e.g. \"%vs\")", data)
		}
		return data, nil
	}
}

// relocate resolves every Path in v (see Resolve).
func relocate(v reflect.Value, root, home string) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				relocate(v.Field(i), root, home)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			relocate(v.Index(i), root, home)
		}
	case reflect.String:
		if v.Type() == pathType && v.CanSet() {
			v.SetString(string(Resolve(Path(v.String()), root, home)))
		}
	}
}

// CheckFile reads path strictly as a config file of this program: the test of
// the files shipped in configs/.
func (s Spec[T]) CheckFile(path string) error {
	_, err := readFile[T](path)
	return err
}
