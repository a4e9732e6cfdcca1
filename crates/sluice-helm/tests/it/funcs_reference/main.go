// Reference outputs for sluice-helm's template functions: each input line
// is a JSON object {"tpl": ..., "data": ...}; each output line is
// {"out": ...} or {"err": ...}, rendered by Go's text/template with Helm
// v4.2.4's function map (sprig v3.3.0 without env/expandenv, plus Helm's
// toYaml/fromYaml/toJson/fromJson/toToml/fromToml/lookup/required/fail as
// pkg/engine defines them).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
	goYaml "sigs.k8s.io/yaml/goyaml.v3"
)

func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toToml": func(v any) string {
			b := bytes.NewBuffer(nil)
			if err := toml.NewEncoder(b).Encode(v); err != nil {
				return err.Error()
			}
			return b.String()
		},
		"fromToml": func(s string) map[string]any {
			m := map[string]any{}
			if err := toml.Unmarshal([]byte(s), &m); err != nil {
				m["Error"] = err.Error()
			}
			return m
		},
		"toYaml": func(v any) string {
			d, err := yaml.Marshal(v)
			if err != nil {
				return ""
			}
			return strings.TrimSuffix(string(d), "\n")
		},
		"mustToYaml": func(v any) string {
			d, err := yaml.Marshal(v)
			if err != nil {
				panic(err)
			}
			return strings.TrimSuffix(string(d), "\n")
		},
		"toYamlPretty": func(v any) string {
			var d bytes.Buffer
			e := goYaml.NewEncoder(&d)
			e.SetIndent(2)
			if err := e.Encode(v); err != nil {
				return ""
			}
			return strings.TrimSuffix(d.String(), "\n")
		},
		"fromYaml": func(s string) map[string]any {
			m := map[string]any{}
			if err := yaml.Unmarshal([]byte(s), &m); err != nil {
				m["Error"] = err.Error()
			}
			return m
		},
		"fromYamlArray": func(s string) []any {
			a := []any{}
			if err := yaml.Unmarshal([]byte(s), &a); err != nil {
				a = []any{err.Error()}
			}
			return a
		},
		"toJson": func(v any) string {
			d, err := json.Marshal(v)
			if err != nil {
				return ""
			}
			return string(d)
		},
		"mustToJson": func(v any) string {
			d, err := json.Marshal(v)
			if err != nil {
				panic(err)
			}
			return string(d)
		},
		"fromJson": func(s string) map[string]any {
			m := map[string]any{}
			if err := json.Unmarshal([]byte(s), &m); err != nil {
				m["Error"] = err.Error()
			}
			return m
		},
		"fromJsonArray": func(s string) []any {
			a := []any{}
			if err := json.Unmarshal([]byte(s), &a); err != nil {
				a = []any{err.Error()}
			}
			return a
		},
		"lookup": func(string, string, string, string) (map[string]any, error) {
			return map[string]any{}, nil
		},
		"required": func(warn string, val any) (any, error) {
			if val == nil {
				return val, errors.New("HELM_ERR_START" + warn + "HELM_ERR_END")
			} else if s, ok := val.(string); ok && s == "" {
				return val, errors.New("HELM_ERR_START" + warn + "HELM_ERR_END")
			}
			return val, nil
		},
		"fail": func(msg string) (string, error) {
			return "", errors.New("HELM_ERR_START" + msg + "HELM_ERR_END")
		},
		"getHostByName": func(string) string { return "" },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

type input struct {
	Tpl  string          `json:"tpl"`
	Data json.RawMessage `json:"data"`
	// YAML text read as Helm reads a values file (instead of data).
	Yaml *string `json:"yaml"`
}

type output struct {
	Out *string `json:"out,omitempty"`
	Err *string `json:"err,omitempty"`
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for sc.Scan() {
		var in input
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var data any
		if in.Yaml != nil {
			m := map[string]any{}
			if err := yaml.Unmarshal([]byte(*in.Yaml), &m); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			data = m
		} else if len(in.Data) > 0 {
			// Values as Helm holds them: sigs.k8s.io/yaml (numbers float64).
			if err := yaml.Unmarshal(in.Data, &data); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		var o output
		t, err := template.New("test").Funcs(funcMap()).Parse(in.Tpl)
		if err == nil {
			var b strings.Builder
			err = t.Execute(&b, data)
			if err == nil {
				s := b.String()
				o.Out = &s
			}
		}
		if err != nil {
			s := err.Error()
			o.Err = &s
		}
		enc.Encode(o)
	}
}
