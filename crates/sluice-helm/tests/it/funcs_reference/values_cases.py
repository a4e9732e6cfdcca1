# Values files of the shared corpus through the functions that print
# whole values; prints one JSON line per (file, template).
import glob, json, os, sys
root = sys.argv[1]
files = sorted(glob.glob(os.path.join(root, "charts/*/values.yaml")) + glob.glob(os.path.join(root, "cases/*/values.yaml")))
tpls = ["{{ toYaml . }}", "{{ toJson . }}", "{{ toPrettyJson . }}", "{{ toToml . }}",
        "{{ range $k, $v := . }}{{ $k }}={{ $v | toString | sha256sum }} {{ end }}",
        "{{ range $k, $v := . }}{{ $k }}:{{ kindOf $v }}:{{ empty $v }}:{{ if not (kindIs \"invalid\" $v) }}{{ $v | toJson | fromJson | toYaml | sha1sum }}{{ end }} {{ end }}"]
for f in files:
    text = open(f).read()
    for t in tpls:
        print(json.dumps({"file": os.path.relpath(f, root), "tpl": t, "yaml": text}))
