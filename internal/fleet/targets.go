// Package fleet runs one resque-expire command against many Redis targets:
// it reads the targets file, picks targets by name, runs the command once
// per target (each as a child process of the same binary, at most a given
// number at once, one target's failure never stopping the others), and
// combines their outputs and exit codes. It owns nothing of what a command
// does to Redis.
package fleet

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Target is one Redis target of a targets file: a name, and the settings a
// global flag would give (a target's own settings win over the flags).
type Target struct {
	Name string `yaml:"name"`
	// URL, or URLEnv: the name of an environment variable holding it, so
	// that no password lives in the file.
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`

	Namespace     string   `yaml:"namespace"`
	IDPaths       []string `yaml:"id_paths"`
	ExpirationKey string   `yaml:"expiration_key"`

	TLSCA         string `yaml:"tls_ca"`
	TLSCert       string `yaml:"tls_cert"`
	TLSKey        string `yaml:"tls_key"`
	TLSSkipVerify bool   `yaml:"tls_skip_verify"`

	SentinelMaster   string   `yaml:"sentinel_master"`
	SentinelAddrs    []string `yaml:"sentinel_addrs"`
	SentinelUsername string   `yaml:"sentinel_username"`
	// SentinelPasswordEnv names the variable holding the Sentinels' password.
	SentinelPasswordEnv string `yaml:"sentinel_password_env"`
}

// UsageError is a targets file, or a choice of targets, that cannot be
// used as given.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Load reads a targets file: a YAML list of targets. Unknown fields,
// duplicate or missing names and a target without a URL are usage errors
// naming the line.
func Load(file string) ([]Target, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--targets: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, usagef("--targets %s: %v", file, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.SequenceNode {
		return nil, usagef("--targets %s: want a YAML list of targets", file)
	}
	var out []Target
	lines := map[string]int{}
	for _, n := range doc.Content[0].Content {
		t, err := decodeTarget(n)
		if err != nil {
			return nil, usagef("--targets %s: %v", file, err)
		}
		if prev, dup := lines[t.Name]; dup {
			return nil, usagef("--targets %s: line %d: target %q is named already at line %d", file, n.Line, t.Name, prev)
		}
		lines[t.Name] = n.Line
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, usagef("--targets %s: no targets", file)
	}
	return out, nil
}

// decodeTarget decodes one list item, refusing fields it does not know.
func decodeTarget(n *yaml.Node) (Target, error) {
	var t Target
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return t, fmt.Errorf("line %d: %v", n.Line, err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		// The re-encoded item starts at line 1: say where it really is.
		return t, fmt.Errorf("target at line %d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	switch {
	case t.Name == "":
		return t, fmt.Errorf("line %d: a target needs a name", n.Line)
	case strings.ContainsAny(t.Name, " \t\n*?[]"):
		return t, fmt.Errorf("line %d: target name %q: no spaces or glob characters", n.Line, t.Name)
	case t.URL != "" && t.URLEnv != "":
		return t, fmt.Errorf("line %d: target %q: give url or url_env, not both", n.Line, t.Name)
	case t.URL == "" && t.URLEnv == "" && t.SentinelMaster == "":
		return t, fmt.Errorf("line %d: target %q needs url, url_env or sentinel_master", n.Line, t.Name)
	}
	return t, nil
}

// Select returns the targets whose name matches one of the globs (all of
// them when there are none), in file order. A glob that matches nothing is
// a usage error: it is most likely a typo.
func Select(all []Target, globs []string) ([]Target, error) {
	if len(globs) == 0 {
		return all, nil
	}
	var out []Target
	hit := make([]bool, len(globs))
	for _, t := range all {
		picked := false
		for i, g := range globs {
			ok, err := path.Match(g, t.Name)
			if err != nil {
				return nil, usagef("--target %q: %v", g, err)
			}
			if ok {
				hit[i], picked = true, true
			}
		}
		if picked {
			out = append(out, t)
		}
	}
	for i, g := range globs {
		if !hit[i] {
			return nil, usagef("--target %q matches no target of the targets file", g)
		}
	}
	return out, nil
}

// settings are the global flags a target sets, with the value each takes;
// secrets go in the environment instead (never in a child's argv).
func (t Target) settings() (flags [][2]string, env []string, err error) {
	url := t.URL
	if t.URLEnv != "" {
		url = os.Getenv(t.URLEnv)
		if url == "" {
			return nil, nil, fmt.Errorf("target %s: the variable %s (url_env) is empty or unset", t.Name, t.URLEnv)
		}
	}
	if url != "" {
		flags = append(flags, [2]string{"redis", ""})
		env = append(env, "REDIS_URL="+url)
	}
	add := func(name, v string) {
		if v != "" {
			flags = append(flags, [2]string{name, v})
		}
	}
	add("namespace", t.Namespace)
	add("expiration-key", t.ExpirationKey)
	add("tls-ca", t.TLSCA)
	add("tls-cert", t.TLSCert)
	add("tls-key", t.TLSKey)
	if t.TLSSkipVerify {
		add("tls-skip-verify", "true")
	}
	add("sentinel-master", t.SentinelMaster)
	add("sentinel-addrs", strings.Join(t.SentinelAddrs, ","))
	add("sentinel-username", t.SentinelUsername)
	for _, p := range t.IDPaths {
		flags = append(flags, [2]string{"id-path", p})
	}
	if t.SentinelPasswordEnv != "" {
		pw := os.Getenv(t.SentinelPasswordEnv)
		if pw == "" {
			return nil, nil, fmt.Errorf("target %s: the variable %s (sentinel_password_env) is empty or unset", t.Name, t.SentinelPasswordEnv)
		}
		flags = append(flags, [2]string{"sentinel-password", ""})
		env = append(env, "REDIS_SENTINEL_PASSWORD="+pw)
	}
	return flags, env, nil
}
