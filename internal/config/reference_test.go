package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// referencePath is the configuration reference the operators read.
const referencePath = "../../docs/configuration.md"

// TestConfigurationReferenceMatchesTheCode holds docs/configuration.md to
// the code: every key the configuration file accepts (the yaml tags of
// Config, walked recursively) has a row in the reference's table of keys,
// and every key in that table is one the file accepts.
func TestConfigurationReferenceMatchesTheCode(t *testing.T) {
	doc, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("the configuration reference: %v", err)
	}
	accepted := acceptedKeys(reflect.TypeFor[Config](), "")
	documented := documentedKeys(string(doc))
	if len(accepted) < 50 || len(documented) < 50 {
		t.Fatalf("found %d accepted and %d documented keys: the walk or the table's parser is broken", len(accepted), len(documented))
	}
	for _, k := range accepted {
		if !slices.Contains(documented, k) {
			t.Errorf("the configuration accepts %s, but %s does not document it", k, referencePath)
		}
	}
	for _, k := range documented {
		if !slices.Contains(accepted, k) {
			t.Errorf("%s documents %s, which the configuration does not accept", referencePath, k)
		}
	}
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// acceptedKeys lists the dotted key of every leaf the YAML decoder fills in
// t, a list's elements written as "[]": partners[].inbound.mode. A type
// that decodes itself (a route's field entry) is a leaf.
func acceptedKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !reflect.PointerTo(ft.Elem()).Implements(unmarshaler) {
			keys = append(keys, acceptedKeys(ft.Elem(), key+"[].")...)
			continue
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshaler) && ft.NumField() > 0 && ft.PkgPath() == t.PkgPath() {
			keys = append(keys, acceptedKeys(ft, key+".")...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

var backticked = regexp.MustCompile("`([^`]+)`")

// documentedKeys reads the first cell of every row of the reference's
// "## Keys" table: one or more keys, each in full and in backticks.
func documentedKeys(doc string) []string {
	_, section, _ := strings.Cut(doc, "\n## Keys\n")
	section, _, _ = strings.Cut(section, "\n## ")
	var keys []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
			keys = append(keys, m[1])
		}
	}
	return keys
}
