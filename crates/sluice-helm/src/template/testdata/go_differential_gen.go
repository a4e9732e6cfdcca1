// Generator of testdata/go_differential.json: runs each case with Go's
// text/template (and Helm v4.2.4's include/tpl/required) and records the
// output or error. See go_differential_cases.py for how to run it.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type tcase struct {
	Name       string          `json:"name"`
	Text       string          `json:"text"`
	Defs       []string        `json:"defs,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	MissingKey string          `json:"missingkey,omitempty"`
	Helm       bool            `json:"helm,omitempty"`
	Out        *string         `json:"out,omitempty"`
	Err        *string         `json:"err,omitempty"`
}

func main() {
	var cases []tcase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for i := range cases {
		c := &cases[i]
		var data any
		if len(c.Data) > 0 {
			if err := json.Unmarshal(c.Data, &data); err != nil {
				panic(err)
			}
		}
		t := template.New("gotpl")
		if c.MissingKey != "" {
			t.Option("missingkey=" + c.MissingKey)
		}
		t.Funcs(template.FuncMap{
			"list": func(a ...any) []any { return a },
			"dict": func(a ...any) map[string]any {
				m := map[string]any{}
				for i := 0; i+1 < len(a); i += 2 {
					m[a[i].(string)] = a[i+1]
				}
				return m
			},
			"fail":   func(s string) (string, error) { return "", fmt.Errorf("%s", s) },
			"upper":  strings.ToUpper,
			"toJson": func(v any) string { b, _ := json.Marshal(v); return string(b) },
		})
		if c.Helm {
			includedNames := map[string]int{}
			t.Funcs(template.FuncMap{
				"include": includeFun(t, includedNames),
				"tpl":     tplFun(t, includedNames, false),
				"required": func(warn string, val any) (any, error) {
					if val == nil {
						return val, errors.New(warn)
					} else if _, ok := val.(string); ok {
						if val == "" {
							return val, errors.New(warn)
						}
					}
					return val, nil
				},
			})
		}
		var err error
		for j, d := range c.Defs {
			if _, err = t.New(fmt.Sprintf("_def%d.tpl", j)).Parse(d); err != nil {
				break
			}
		}
		if err == nil {
			_, err = t.New(c.Name).Parse(c.Text)
		}
		if err == nil {
			var b strings.Builder
			err = t.ExecuteTemplate(&b, c.Name, data)
			if err == nil {
				s := b.String()
				c.Out = &s
			}
		}
		if err != nil {
			s := err.Error()
			c.Err = &s
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	enc.Encode(cases)
}

// Helm v4.2.4 pkg/engine's include and tpl, as they are.
const recursionMaxNums = 1000

func includeFun(t *template.Template, includedNames map[string]int) func(string, any) (string, error) {
	return func(name string, data any) (string, error) {
		var buf strings.Builder
		if v, ok := includedNames[name]; ok {
			if v > recursionMaxNums {
				return "", fmt.Errorf(
					"rendering template has a nested reference name: %s: %w",
					name, errors.New("unable to execute template"))
			}
			includedNames[name]++
		} else {
			includedNames[name] = 1
		}
		err := t.ExecuteTemplate(&buf, name, data)
		includedNames[name]--
		return buf.String(), err
	}
}

func tplFun(parent *template.Template, includedNames map[string]int, strict bool) func(string, any) (string, error) {
	return func(tpl string, vals any) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		if strict {
			t.Option("missingkey=error")
		} else {
			t.Option("missingkey=zero")
		}
		t.Funcs(template.FuncMap{
			"include": includeFun(t, includedNames),
			"tpl":     tplFun(t, includedNames, strict),
		})
		t, err = t.New(parent.Name()).Parse(tpl)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", tpl, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", tpl, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}
