// helm-render renders a Helm chart the way `helm template` does, without a helm
// binary or a cluster: Go's text/template with the Sprig functions (the library Helm
// itself uses) plus Helm's include, tpl, required, toYaml, fromYaml, toJson,
// fromJson and lookup (empty, as in `helm template`), with .Values (values.yaml
// merged with -f files), .Release, .Chart, .Capabilities and .Template.
//
// Usage:
//
//	helm-render -chart DIR [-f values.yaml]... [-release NAME] [-namespace NS]
//	            [-output-dir DIR | -json | -config-key KEY]
//
// Every rendered manifest must parse as YAML with apiVersion and kind, or the
// render fails. With -output-dir each manifest is written to its own file
// (NN-kind-name.yaml); with -json they are printed as one JSON array of
// {"source", "manifest"} objects; with -config-key only the value of that data key of the
// rendered ConfigMap holding it is printed (the gateway's nginx.conf).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

// capabilities mirrors Helm's .Capabilities for templates that test versions.
type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
}

type kubeVersion struct {
	Version, Major, Minor, GitVersion string
}

type apiVersions []string

// Has reports whether a group/version (or group/version/Kind) is served; the offline
// render claims the built-in APIs of its Kubernetes version and the monitoring CRDs.
func (a apiVersions) Has(version string) bool {
	for _, v := range a {
		if v == version || strings.HasPrefix(version, v+"/") {
			return true
		}
	}
	return false
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "helm-render: error:", err)
		os.Exit(1)
	}
}

func run() error {
	var files valueFiles
	chartDir := flag.String("chart", "", "chart directory")
	release := flag.String("release", "logpool", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	outputDir := flag.String("output-dir", "", "write one file per manifest here")
	configKey := flag.String("config-key", "", "print only this data key of the ConfigMap that has it")
	asJSON := flag.Bool("json", false, "print the manifests as a JSON array")
	flag.Var(&files, "f", "values file merged over values.yaml (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		return errors.New("-chart is required")
	}

	chart, err := readYAMLMap(filepath.Join(*chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	values, err := readYAMLMap(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, file := range files {
		override, err := readYAMLMap(file)
		if err != nil {
			return err
		}
		values = mergeValues(values, override)
	}
	chartName, _ := chart["name"].(string)
	if chartName == "" {
		return errors.New("Chart.yaml has no name")
	}

	manifests, err := render(*chartDir, chartName, chart, values, *release, *namespace)
	if err != nil {
		return err
	}
	if *configKey != "" {
		return printConfigKey(manifests, *configKey)
	}
	if *outputDir != "" {
		return writeManifests(*outputDir, manifests)
	}
	if *asJSON {
		return printJSON(manifests)
	}
	for _, m := range manifests {
		fmt.Printf("---\n# Source: %s\n%s\n", m.source, m.text)
	}
	return nil
}

type manifest struct {
	source string
	text   string
	object map[string]interface{}
}

func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if out == nil {
		out = map[string]interface{}{}
	}
	return out, nil
}

// mergeValues merges override into base as Helm does: maps recursively, anything
// else replaced, and a null removes the key.
func mergeValues(base, override map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		baseMap, baseIsMap := out[k].(map[string]interface{})
		overMap, overIsMap := v.(map[string]interface{})
		if baseIsMap && overIsMap {
			out[k] = mergeValues(baseMap, overMap)
		} else {
			out[k] = v
		}
	}
	return out
}

func render(chartDir, chartName string, chart, values map[string]interface{}, release, namespace string) ([]manifest, error) {
	templatesDir := filepath.Join(chartDir, "templates")
	entries, err := os.ReadDir(templatesDir)
	if err != nil {
		return nil, err
	}
	root := template.New("chart").Option("missingkey=zero")
	funcs := funcMap(root)
	root.Funcs(funcs)
	var names []string
	for _, entry := range entries {
		if entry.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(templatesDir, entry.Name()))
		if err != nil {
			return nil, err
		}
		name := chartName + "/templates/" + entry.Name()
		if _, err := root.New(name).Parse(string(data)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	sort.Strings(names)

	top := map[string]interface{}{
		"Values": values,
		"Chart":  helmChart(chart),
		"Release": map[string]interface{}{
			"Name": release, "Namespace": namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": capabilities{
			KubeVersion: kubeVersion{Version: "v1.29.0", Major: "1", Minor: "29", GitVersion: "v1.29.0"},
			APIVersions: apiVersions{"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2",
				"networking.k8s.io/v1", "monitoring.coreos.com/v1"},
		},
		"Files": map[string]interface{}{},
	}

	var out []manifest
	for _, name := range names {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" {
			continue
		}
		scope := copyMap(top)
		scope["Template"] = map[string]interface{}{"Name": name, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, scope); err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		for _, doc := range splitDocuments(text) {
			object := map[string]interface{}{}
			if err := yaml.Unmarshal([]byte(doc), &object); err != nil {
				return nil, fmt.Errorf("%s: rendered YAML does not parse: %w\n%s", name, err, numbered(doc))
			}
			if len(object) == 0 {
				continue
			}
			if object["apiVersion"] == nil || object["kind"] == nil {
				return nil, fmt.Errorf("%s: a manifest without apiVersion or kind:\n%s", name, numbered(doc))
			}
			out = append(out, manifest{source: name, text: doc, object: object})
		}
	}
	// NOTES.txt must render too (helm install prints it).
	if root.Lookup(chartName+"/templates/NOTES.txt") != nil {
		scope := copyMap(top)
		scope["Template"] = map[string]interface{}{"Name": "NOTES.txt", "BasePath": chartName + "/templates"}
		if err := root.ExecuteTemplate(&bytes.Buffer{}, chartName+"/templates/NOTES.txt", scope); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

func splitDocuments(text string) []string {
	var docs []string
	for _, doc := range documentSeparator.Split(text, -1) {
		if strings.TrimSpace(doc) != "" {
			docs = append(docs, strings.Trim(doc, "\n"))
		}
	}
	return docs
}

func numbered(doc string) string {
	var b strings.Builder
	for i, line := range strings.Split(doc, "\n") {
		fmt.Fprintf(&b, "%4d | %s\n", i+1, line)
	}
	return b.String()
}

func copyMap(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// helmChart gives Chart.yaml's fields the names templates use (.Chart.AppVersion).
func helmChart(chart map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range chart {
		if k == "" {
			continue
		}
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return out
}

func funcMap(root *template.Template) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	// As in Helm: no access to the renderer's environment.
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("include %q: too deeply nested", name)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(message string, value interface{}) (interface{}, error) {
		if value == nil {
			return nil, errors.New(message)
		}
		if s, ok := value.(string); ok && s == "" {
			return nil, errors.New(message)
		}
		return value, nil
	}
	funcs["toYaml"] = func(value interface{}) string {
		data, err := yaml.Marshal(value)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	funcs["fromYaml"] = func(text string) map[string]interface{} {
		out := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(text), &out); err != nil {
			out["Error"] = err.Error()
		}
		return out
	}
	funcs["toJson"] = func(value interface{}) string {
		data, err := json.Marshal(value)
		if err != nil {
			return ""
		}
		return string(data)
	}
	funcs["fromJson"] = func(text string) map[string]interface{} {
		out := map[string]interface{}{}
		if err := json.Unmarshal([]byte(text), &out); err != nil {
			out["Error"] = err.Error()
		}
		return out
	}
	// `helm template` has no cluster to look in: lookup finds nothing.
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return funcs
}

func writeManifests(dir string, manifests []manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, m := range manifests {
		kind, _ := m.object["kind"].(string)
		name := ""
		if meta, ok := m.object["metadata"].(map[string]interface{}); ok {
			name, _ = meta["name"].(string)
		}
		file := filepath.Join(dir, fmt.Sprintf("%02d-%s-%s.yaml", i, strings.ToLower(kind), name))
		content := fmt.Sprintf("# Source: %s\n%s\n", m.source, m.text)
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func printConfigKey(manifests []manifest, key string) error {
	for _, m := range manifests {
		if m.object["kind"] != "ConfigMap" {
			continue
		}
		data, _ := m.object["data"].(map[string]interface{})
		if value, ok := data[key].(string); ok {
			fmt.Print(value)
			return nil
		}
	}
	return fmt.Errorf("no rendered ConfigMap has the data key %q", key)
}

func printJSON(manifests []manifest) error {
	out := make([]map[string]interface{}, 0, len(manifests))
	for _, m := range manifests {
		out = append(out, map[string]interface{}{"source": m.source, "manifest": m.object})
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(data))
	return nil
}
