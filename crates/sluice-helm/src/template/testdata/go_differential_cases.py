# The differential cases of ../tests.rs (go_differential).
#
# Regenerate (Go 1.26 at /usr/local/go; from this directory):
#   python3 go_differential_cases.py > /tmp/cases.json
#   mkdir -p /tmp/gotpl && cp go_differential_gen.go /tmp/gotpl/main.go && \
#     (cd /tmp/gotpl && printf 'module gotpl\n\ngo 1.26\n' > go.mod && go build -o gotpl .)
#   /tmp/gotpl/gotpl < /tmp/cases.json > /tmp/out.json
#   python3 go_differential_cases.py finish /tmp/out.json > go_differential.json
import sys
import json
D = {"a": {"b": "str", "n": None, "list": [1, "x", None, {"k": "v"}]}, "big": 1000000, "f": 1.5, "i": 3, "neg": -2.5,
     "s": "hello", "empty": "", "t": True, "fl": False, "list": ["x", "y"], "nums": [3, 1, 2], "m": {"z": 1, "a": 2},
     "nullv": None, "small": 0.0001, "tiny": 1e-7, "huge": 1e21, "ten": 10, "str_num": "10", "nested": {"x": {"y": {"z": "deep"}}},
     "maplist": [{"name": "a"}, {"name": "b"}], "zero": 0, "emptylist": [], "emptymap": {}}
cases = []
def c(name, text, data=D, mk="zero", defs=None, helm=False):
    e = {"name": name, "text": text, "data": data, "missingkey": mk}
    if helm: e["helm"] = True
    if defs: e["defs"] = defs
    cases.append(e)
# printing
for t in ["{{ .big }}", "{{ .f }}", "{{ .i }}", "{{ .neg }}", "{{ .small }}", "{{ .tiny }}", "{{ .huge }}", "{{ .list }}", "{{ .m }}",
          "{{ .a }}", "{{ .nullv }}", "{{ .missing }}", "{{ .t }}", "{{ .emptylist }}", "{{ .emptymap }}", "{{ .a.list }}", "{{ . }}",
          "{{ 1e6 }}", "{{ 1000000 }}", "{{ 0x10 }}", "{{ 'a' }}", "{{ 1.0 }}", "{{ -0.0 }}", "{{ 3.14e-10 }}", "{{ 123456789.0 }}", "{{ 100000.0 }}"]:
    c("print", t)
# missing keys and nil
for mk in ["zero", "default", "error"]:
    for t in ["{{ .missing }}", "{{ .missing.b }}", "{{ .a.missing }}", "{{ .a.n }}", "{{ .a.n.x }}", "{{ $x := .missing }}{{ $x.b }}",
              "{{ (.missing).b }}", "{{ .a.b.c }}", "{{ .s.x }}", "{{ range .list }}{{ .x }}{{ end }}", "{{ with .missing }}y{{ else }}n{{ end }}",
              "{{ .nullv.x }}", "{{ index .m \"q\" }}", "{{ .m.q.r }}", "{{ len .missing }}", "{{ eq .missing \"x\" }}", "{{ eq .missing nil }}",
              "{{ print .missing }}", "{{ printf \"%s\" .missing }}", "{{ html .missing }}", "{{ .missing | upper }}", "{{ $.missing }}", "{{ range .missing }}x{{ end }}"]:
        c("mk_" + mk, t, mk=mk)
# comparisons
for t in ["{{ eq .i 3 }}", "{{ eq .f 1.5 }}", "{{ eq .s \"hello\" }}", "{{ eq .s \"a\" \"hello\" }}", "{{ eq .list .list }}", "{{ eq .m .m }}",
          "{{ eq .list .m }}", "{{ lt .i 4 }}", "{{ lt .s \"z\" }}", "{{ lt 1 2.0 }}", "{{ gt .f 1 }}", "{{ le 2 2 }}", "{{ ge \"a\" \"b\" }}",
          "{{ ne .s \"x\" }}", "{{ eq .t true }}", "{{ lt .t .t }}", "{{ lt .list 1 }}", "{{ eq 1 }}", "{{ eq }}", "{{ ne 1 2 3 }}",
          "{{ eq .nullv .missing }}", "{{ lt .missing 1 }}", "{{ eq .i .str_num }}", "{{ eq 3 .i }}", "{{ eq .ten 10.0 }}"]:
    c("cmp", t)
# builtins
for t in ["{{ len .list }}", "{{ len .s }}", "{{ len .m }}", "{{ len .i }}", "{{ len \"héllo\" }}", "{{ index .list 1 }}", "{{ index .list 5 }}",
          "{{ index .list -1 }}", "{{ index .list 2 }}", "{{ index .m \"z\" }}", "{{ index .a \"list\" 3 \"k\" }}", "{{ index .s 1 }}", "{{ index .list \"x\" }}",
          "{{ index .m 1 }}", "{{ index .i 1 }}", "{{ index nil 1 }}", "{{ index .list 1.0 }}", "{{ slice .list 1 }}", "{{ slice .s 1 3 }}", "{{ slice .list 3 }}",
          "{{ slice .list 0 1 2 }}", "{{ slice .s 0 1 2 }}", "{{ slice .i }}", "{{ not .s }}", "{{ not .empty }}", "{{ and .s .i }}", "{{ and .s .empty .i }}",
          "{{ or .empty .zero .s }}", "{{ or .empty .zero }}", "{{ and }}", "{{ not 1 2 }}", "{{ print 1 2 \"a\" 3 .f nil }}", "{{ println .s .i }}",
          "{{ print .list .m }}", "{{ html \"<a href='x'>&\\\"</a>\" }}", "{{ js \"a'b\\\"c<d>&=\\n\\u2028é\" }}", "{{ urlquery \"a b&c=d/é\" }}",
          "{{ html .i .s }}", "{{ urlquery 1 2 }}", "{{ call .s }}", "{{ call nil }}", "{{ .s | len }}", "{{ \"x\" | printf \"%s-%s\" \"y\" }}"]:
    c("builtin", t)
# printf
for t in ["{{ printf \"%d\" .i }}", "{{ printf \"%d\" 3 }}", "{{ printf \"%v\" .i }}", "{{ printf \"%s\" .i }}", "{{ printf \"%5.2f|%-8s|%08.3f\" .f .s .neg }}",
          "{{ printf \"%q\" .s }}", "{{ printf \"%x %X %o %b %c %U\" 255 255 8 5 65 65 }}", "{{ printf \"%x\" .s }}", "{{ printf \"% x\" .s }}",
          "{{ printf \"%T %T %T %T %T %T\" .i .s .list .m .t nil }}", "{{ printf \"%v %s %d\" .list .list .nums }}", "{{ printf \"%v\" .m }}", "{{ printf \"%d\" .m }}",
          "{{ printf \"%e %E %g %G\" .big .big .tiny .huge }}", "{{ printf \"%.3g %.10g %.0f %.1e\" 1234.5678 0.1 2.5 12345.0 }}", "{{ printf \"%6.2v|\" .f }}",
          "{{ printf \"%+d %+.1f % d\" 5 .f 7 }}", "{{ printf \"%#x %#o %#v\" 255 8 .s }}", "{{ printf \"%d %s\" 1 }}", "{{ printf \"%d\" 1 2 \"x\" }}",
          "{{ printf \"%!\" }}", "{{ printf \"%z\" 3 }}", "{{ printf \"%\" }}", "{{ printf \"%[2]d %[1]s\" \"a\" 3 }}", "{{ printf \"%*d|%-*d|\" 5 3 4 2 }}",
          "{{ printf \"%t %t\" .t 1 }}", "{{ printf \"%s\" .t }}", "{{ printf \"%q\" .list }}", "{{ printf \"%05s|%.2s|%5.1s|\" \"ab\" \"abc\" \"xyz\" }}",
          "{{ printf \"%x\" .f }}", "{{ printf \"%d\" .f }}", "{{ printf \"%s\" .f }}", "{{ printf \"%v %v\" .nullv .a.n }}", "{{ printf \"%3c|%-4q|\" 65 66 }}",
          "{{ printf .i }}", "{{ printf nil }}", "{{ printf .missing }}", "{{ printf \"%v\" (list 1 \"a\" nil) }}", "{{ printf \"%s\" (dict \"a\" 1) }}",
          "{{ printf \"%06.2f|%+.3e|%x\" -3.14159 123456.789 -255 }}", "{{ printf \"%.2f\" 2.675 }}", "{{ printf \"%g\" 100000000.0 }}", "{{ printf \"%v\" 1e20 }}"]:
    c("printf", t)
# control
for t in ["{{ range $i, $v := .list }}{{ $i }}={{ $v }};{{ end }}", "{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}", "{{ range .nums }}{{ if eq . 1.0 }}{{ break }}{{ end }}{{ . }}{{ end }}",
          "{{ range .nums }}{{ if eq . 1.0 }}{{ continue }}{{ end }}{{ . }}{{ end }}", "{{ range 3 }}{{ . }}{{ end }}", "{{ range $i := 3 }}{{ $i }}{{ end }}", "{{ range $i, $j := 3 }}{{ end }}",
          "{{ range .i }}{{ . }}{{ end }}", "{{ range .s }}{{ . }}{{ end }}", "{{ range .f }}{{ . }}{{ end }}", "{{ range .t }}{{ end }}", "{{ range .emptylist }}x{{ else }}empty{{ end }}",
          "{{ range .maplist }}{{ .name }}{{ end }}", "{{ with .a }}{{ .b }}{{ end }}", "{{ with .zero }}y{{ else with .s }}{{ . }}{{ end }}", "{{ if .empty }}a{{ else if .zero }}b{{ else }}c{{ end }}",
          "{{ $x := 1 }}{{ range .list }}{{ $x = . }}{{ end }}{{ $x }}", "{{ $x := 1 }}{{ with .s }}{{ $x := 2 }}{{ end }}{{ $x }}", "{{ range $i, $v := .list }}{{ end }}{{ $i }}",
          "a  {{- .s -}}  b", "a\n  {{- .s }}\n  b", "{{- /* c */ -}}  x", "{{ define \"t\" }}T{{ . }}{{ end }}{{ template \"t\" .s }}", "{{ template \"nope\" }}",
          "{{ block \"bl\" .s }}[{{ . }}]{{ end }}", "{{ define \"r\" }}{{ .x.y }}{{ end }}{{ template \"r\" .a }}", "x{{ template \"_h\" . }}y",
          "{{ $ := 1 }}", "{{ .s.len }}", "{{ .Method }}", "{{ nil }}", "{{ 1 2 }}", "{{ .s 1 }}", "{{ $x := 1 }}{{ $x 2 }}", "{{ (1) 2 }}", "{{ .list.x }}", "{{ .i.x }}",
          "{{ upper 1 }}", "{{ upper }}", "{{ upper \"a\" \"b\" }}", "{{ fail \"boom\" }}", "line1\nline2 {{ .a.b.c }}", "{{ \"abc\" | upper | printf \"%s!\" }}",
          "{{ if and .s (eq .i 3.0) }}yes{{ end }}", "{{ (.nested.x).y.z }}", "{{ $v := .nested }}{{ $v.x.y.z }}", "{{ $.nested.x.y.z }}", "{{ with $x := .s }}{{ $x }}{{ . }}{{ end }}"]:
    c("control", t, defs=["{{ define \"_h\" }}[{{ .s }}]{{ end }}"])
# parse errors
for t in ["{{ .a | }}", "{{ if }}", "{{ end }}", "{{ foo }}", "{{ \"x }}", "{{ define \"a\" }}", "{{ if .a }}", "{{ else }}", "{{ range $a, $b, $c := . }}{{ end }}",
          "{{ $x }}", "{{ .a.b .c }} {{", "{{/* x", "{{ 1 | 2 }}", "{{ .a )}}", "{{ (.a }}", "{{ `x }}", "{{ 'ab' }}", "{{ 08 }}", "{{ 1e }}", "{{ .a..b }}",
          "{{ $x := }}", "{{ template .a }}", "{{ break }}", "{{ range . }}{{ else }}{{ break }}{{ end }}", "{{ with $x := 1 }}{{ end }}{{ $x }}",
          "{{ . | printf }}\n\n{{ bogus }}", "{{\n.a\n|\n}}", "{{ .a.b.c\n", "{{ \"\\q\" }}", "{{ 0x }}", "{{ 1_ }}", "{{ 99999999999999999999 }}", "{{ ((( 1 ))) }}",
          "{{ define \"x\" }}a{{ end }}{{ define \"x\" }}b{{ end }}", "{{ true.x }}", "{{ nil.x }}", "{{ 3 | . }}", "{{ $x := 1 | printf \"%d\" }}{{ $x }}", "{{ -}}", "{{- }}", "{{-3}}", "{{ - 3 }}", "{{3 -}}"]:
    c("parse", t)
# more nil and missing flows, in every mode
for mk in ["zero", "default", "error"]:
    for t in ["{{ index .m \"q\" \"r\" }}", "{{ index .a \"n\" \"x\" }}", "{{ index .a.list 3 \"k\" }}", "{{ index .a.list 2 \"k\" }}", "{{ len (index .m \"q\") }}",
              "{{ not .missing }}", "{{ and .missing 1 }}", "{{ or .missing \"d\" }}", "{{ eq .a.n nil }}", "{{ slice .missing }}", "{{ index .missing 0 }}",
              "{{ with $v := .missing }}{{ $v }}{{ else }}none{{ end }}", "{{ range $k, $v := .a }}{{ $k }}={{ $v }};{{ end }}", "{{ .a.list }}", "{{ printf \"%v|%s|%d\" .a.n .a.n .a.n }}",
              "{{ template \"_h\" .missing }}", "{{ template \"_h\" }}", "{{ $x := .a }}{{ $x.missing.y }}", "{{ (index .a \"missing\").y }}", "{{ .a.list.x }}",
              "{{ range .a.list }}[{{ . }}]{{ end }}", "{{ range .a.list }}{{ with . }}{{ . }}{{ end }}{{ end }}", "{{ print .missing .nullv }}", "{{ .nested.x.y.z.w }}"]:
        c("nil_" + mk, t, mk=mk, defs=["{{ define \"_h\" }}[{{ .s }}]{{ end }}"])
# Helm's include, tpl and required over the engine
HD = ["{{ define \"lib.name\" }}{{ .s }}-name{{ end }}", "{{ define \"lib.self\" }}{{ include \"lib.self\" . }}{{ end }}",
      "{{ define \"lib.ab\" }}a{{ include \"lib.ba\" . }}{{ end }}{{ define \"lib.ba\" }}b{{ include \"lib.ab\" . }}{{ end }}",
      "{{ define \"lib.err\" }}\n{{ .a.b.c }}{{ end }}", "{{ define \"lib.missing\" }}[{{ .nope }}]{{ end }}"]
for t in ["{{ include \"lib.name\" . }}", "{{ include \"lib.name\" . | upper }}", "{{ include \"nope\" . }}", "{{ include \"lib.self\" . }}",
          "{{ include \"lib.ab\" . }}", "{{ include \"lib.err\" . }}", "{{ include \"lib.missing\" . }}", "{{ tpl \"{{ .s }}!\" . }}",
          "{{ tpl \"{{ .nope }}|{{ .s }}\" . }}", "{{ tpl \"{{ define \\\"in\\\" }}IN{{ end }}{{ include \\\"in\\\" . }}\" . }}", "{{ tpl \"{{ .a.b.c }}\" . }}",
          "{{ tpl \"{{ if }}\" . }}", "{{ tpl \"{{ include \\\"lib.name\\\" . }}\" . }}", "{{ tpl \"{{ tpl \\\"{{ .s }}\\\" . }}\" . }}",
          "{{ tpl .s . }}", "{{ tpl \"\" . }}", "{{ tpl \"  \" . }}", "{{ tpl \"{{ define \\\"lib.name\\\" }}X{{ end }}\" . }}{{ include \"lib.name\" . }}",
          "{{ required \"need it\" .nope }}", "{{ required \"need it\" .empty }}", "{{ required \"need it\" .s }}", "{{ required \"need it\" .zero }}",
          "{{ tpl \"{{ required \\\"inner\\\" .nope }}\" . }}", "{{ tpl (toString 1) . }}", "{{ tpl \"{{ template \\\"lib.name\\\" . }}\" . }}"]:
    c("helm", t, defs=HD, helm=True)
if len(sys.argv) > 2 and sys.argv[1] == "finish":
    out = []
    for c in json.load(open(sys.argv[2])):
        e = {"name": c["name"], "text": c["text"], "mk": c["missingkey"]}
        if c.get("helm"): e["helm"] = True
        if "defs" in c: e["defs"] = c["defs"]
        if "out" in c: e["out"] = c["out"]
        if "err" in c:
            if len(c["err"]) > 4000:
                e["err_len"] = len(c["err"]); e["err_head"] = c["err"][:600]; e["err_tail"] = c["err"][-600:]
            else:
                e["err"] = c["err"]
        out.append(e)
    print(json.dumps({"generator": "Go 1.26.8 text/template, template set \"gotpl\" with list/dict/fail/upper (and for helm cases Helm v4.2.4's include/tpl/required); data below decoded by encoding/json; errors longer than 4000 bytes kept as length, head and tail", "data": D, "cases": out}, ensure_ascii=False, indent=0))
else:
    print(json.dumps(cases))
