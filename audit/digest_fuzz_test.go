package audit

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
)

// FuzzLonerDigests: the hand-written re-encoder behind the loner digests
// never panics, answers alike for the same payload, gives 32-hex-digit MD5
// digests, and gives one for every JSON object with a class and an args
// array (what resque-loner could have enqueued).
func FuzzLonerDigests(f *testing.F) {
	for _, s := range []string{
		`{"class":"A","args":[1,"x"]}`,
		`{"class":"A","args":[{"b":1,"a":[2,{"d":null,"c":true}]}]}`,
		`{"args":["\u2028<>&\ud83d\ude00"],"class":"A"}`,
		`{"class":"A","args":{}}`, `{"class":"A"}`, `[1]`, `{"class":"A","args":[1e400]}`, "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		got := new(lonerDigester).digests([]byte(payload))
		if again := new(lonerDigester).digests([]byte(payload)); !slices.Equal(got, again) {
			t.Fatalf("two answers for %q: %v and %v", payload, got, again)
		}
		for _, d := range got {
			if b, err := hex.DecodeString(d); err != nil || len(b) != 16 {
				t.Fatalf("digest %q of %q is not an MD5 in hex", d, payload)
			}
		}
		// Exactly "class" and "args" (json.Unmarshal into a struct would
		// also take "Args"), the last of duplicates, as Ruby reads them.
		var job map[string]json.RawMessage
		var class string
		var args []json.RawMessage
		if json.Unmarshal([]byte(payload), &job) == nil && json.Unmarshal(job["class"], &class) == nil &&
			json.Unmarshal(job["args"], &args) == nil && args != nil && len(got) == 0 {
			t.Fatalf("no digest for %q, a job resque-loner could have enqueued", payload)
		}
	})
}
