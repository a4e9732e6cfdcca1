package main

import (
	"encoding/json"
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
