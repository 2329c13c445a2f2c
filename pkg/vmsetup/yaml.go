package vmsetup

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SetYAML sets dotted keys (e.g. "anthropic.api_key") in a YAML document,
// keeping every other key and the comments, and creating the mappings on the
// way. An empty document becomes header followed by the keys.
func SetYAML(doc []byte, header string, set [][2]string) ([]byte, error) {
	var root yaml.Node
	if len(bytes.TrimSpace(doc)) > 0 {
		if err := yaml.Unmarshal(doc, &root); err != nil {
			return nil, err
		}
	}
	if root.Kind == 0 {
		root = yaml.Node{Kind: yaml.DocumentNode, HeadComment: header,
			Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, fmt.Errorf("not a single YAML document")
	}
	if root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null" {
		root.Content[0] = &yaml.Node{Kind: yaml.MappingNode}
	}
	for _, kv := range set {
		if err := setKey(root.Content[0], strings.Split(kv[0], "."), kv[1]); err != nil {
			return nil, fmt.Errorf("%s: %w", kv[0], err)
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	return out.Bytes(), enc.Close()
}

func setKey(m *yaml.Node, path []string, value string) error {
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("not a mapping")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != path[0] {
			continue
		}
		v := m.Content[i+1]
		if len(path) == 1 {
			*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value,
				HeadComment: v.HeadComment, LineComment: v.LineComment, FootComment: v.FootComment}
			return nil
		}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			*v = yaml.Node{Kind: yaml.MappingNode}
		}
		return setKey(v, path[1:], value)
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Value: path[0]}
	if len(path) == 1 {
		m.Content = append(m.Content, k, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
		return nil
	}
	v := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, k, v)
	return setKey(v, path[1:], value)
}

// GetYAML returns the string value of a dotted key ("" when absent).
func GetYAML(doc []byte, key string) string {
	var v map[string]any
	if yaml.Unmarshal(doc, &v) != nil {
		return ""
	}
	var cur any = v
	for _, p := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}
