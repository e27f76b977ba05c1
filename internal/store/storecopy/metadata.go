package storecopy

import "encoding/json"

// metadataValue returns key of a message's metadata as stored (a JSON
// object of strings), "" when absent or unreadable.
func metadataValue(meta []byte, key string) string {
	var m map[string]string
	if json.Unmarshal(meta, &m) != nil {
		return ""
	}
	return m[key]
}
