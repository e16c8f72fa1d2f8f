// Package promsel builds PromQL selectors for tests. Only tests import it.
package promsel

import (
	"strconv"
	"strings"
)

// Matchers is the label matchers of the pairs kv, {k1="v1",...} with the
// values quoted ({} without pairs). A key may end with its operator (=~,
// !=, !~); it is = when it does not.
func Matchers(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		k := kv[i]
		if !strings.HasSuffix(k, "=~") && !strings.HasSuffix(k, "!=") && !strings.HasSuffix(k, "!~") {
			k += "="
		}
		b.WriteString(k + strconv.Quote(kv[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}
