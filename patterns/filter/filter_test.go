package filter_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/courier-aws/courier/patterns/filter"
)

func TestBuilderJSON(t *testing.T) {
	p, err := filter.OnBody().
		Key("order.total", filter.Numeric(">=", 100, "<", 1000)).
		Key("color", "orange", filter.Prefix("red-")).
		Or(filter.OnBody().Key("vip", true), filter.OnBody().Key("region", filter.AnythingBut("eu", "us"))).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"$or":[{"vip":[true]},{"region":[{"anything-but":["eu","us"]}]}],"color":["orange",{"prefix":"red-"}],"order":{"total":[{"numeric":[">=",100,"<",1000]}]}}`
	if p.JSON() != want {
		t.Errorf("JSON\n got %s\nwant %s", p.JSON(), want)
	}
	again, err := filter.Parse(p.JSON(), filter.Body)
	if err != nil || again.JSON() != want {
		t.Errorf("round trip: %v %s", err, again)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		policy string
		scope  filter.Scope
		names  string // what the error must mention; "" = valid
	}{
		{`{"color":["orange"]}`, "", ""},
		{`{}`, "", "empty policy"},
		{`[]`, "", "JSON object"},
		{`{"color":"orange"}`, "", `"color"`},
		{`{"color":[]}`, "", `"color": empty array`},
		{`{"a":["1"],"b":["1"],"c":["1"],"d":["1"],"e":["1"],"f":["1"]}`, "", "6 keys"},
		{`{"order":{"total":[1]}}`, filter.Attributes, `"order": nested keys`},
		{`{"order":{"total":[1]}}`, filter.Body, ""},
		{`{"n":[{"numeric":[">",1000000001]}]}`, "", "outside -1e9..1e9"},
		{`{"n":[{"numeric":[">",1.123456]}]}`, "", "five digits"},
		{`{"n":[{"numeric":[">",10,"<",5]}]}`, "", "lower bound"},
		{`{"n":[{"numeric":["!=",1]}]}`, "", "operator"},
		{`{"c":[{"prefix":1}]}`, "", "prefix takes a string"},
		{`{"c":[{"regex":"x"}]}`, "", `unknown operator "regex"`},
		{`{"c":[{"cidr":"10.0.0.0/33"}]}`, "", "not a CIDR"},
		{`{"c":[{"anything-but":[]}]}`, "", "empty list"},
		{`{"c":[{"exists":"yes"}]}`, "", "exists takes true or false"},
		{`{"a":["1","2","3","4","5","6","7","8","9","10"],"b":["1","2","3","4","5","6","7","8","9","10"],"c":["1","2"]}`, "", "combinations"},
		{`{"$or":[{"a":["1"]},{"b":["2"]}]}`, "", ""},
		{`{"$or":[{"a":[{"numeric":["<",1.1234567]}]},{"b":["2"]}]}`, "", "$or[0]"},
	} {
		_, err := filter.Parse(tt.policy, tt.scope)
		switch {
		case tt.names == "" && err != nil:
			t.Errorf("%s: %v", tt.policy, err)
		case tt.names != "" && (err == nil || !errors.Is(err, filter.ErrInvalidPolicy) || !strings.Contains(err.Error(), tt.names)):
			t.Errorf("%s: error %v, want ErrInvalidPolicy naming %q", tt.policy, err, tt.names)
		}
	}
}

func TestMatchAttributes(t *testing.T) {
	s := func(v string) filter.Attr { return filter.Attr{Type: "String", Value: v} }
	n := func(v string) filter.Attr { return filter.Attr{Type: "Number", Value: v} }
	arr := func(v string) filter.Attr { return filter.Attr{Type: "String.Array", Value: v} }
	for _, tt := range []struct {
		policy string
		attrs  map[string]filter.Attr
		want   bool
	}{
		{`{"color":["orange"]}`, map[string]filter.Attr{"color": s("orange")}, true},
		{`{"color":["orange"]}`, map[string]filter.Attr{"color": s("Orange")}, false},
		{`{"color":["orange"]}`, nil, false},
		{`{"color":[{"equals-ignore-case":"orange"}]}`, map[string]filter.Attr{"color": s("ORANGE")}, true},
		{`{"color":[{"prefix":"ora"}]}`, map[string]filter.Attr{"color": s("orange")}, true},
		{`{"color":[{"suffix":"nge"}]}`, map[string]filter.Attr{"color": s("orange")}, true},
		{`{"color":[{"anything-but":["red"]}]}`, map[string]filter.Attr{"color": s("orange")}, true},
		{`{"color":[{"anything-but":["red"]}]}`, map[string]filter.Attr{"color": s("red")}, false},
		{`{"color":[{"anything-but":["red"]}]}`, nil, false},
		{`{"color":[{"anything-but":{"prefix":"re"}}]}`, map[string]filter.Attr{"color": s("red")}, false},
		{`{"color":[{"exists":false}]}`, nil, false}, // no attributes at all: no match
		{`{"color":[{"exists":false}]}`, map[string]filter.Attr{"size": s("L")}, true},
		{`{"color":[{"exists":false}]}`, map[string]filter.Attr{"color": s("x")}, false},
		{`{"color":[{"exists":true}]}`, map[string]filter.Attr{"color": s("x")}, true},
		{`{"price":[{"numeric":[">",10,"<=",20]}]}`, map[string]filter.Attr{"price": n("20")}, true},
		{`{"price":[{"numeric":[">",10,"<=",20]}]}`, map[string]filter.Attr{"price": n("20.5")}, false},
		{`{"price":[{"numeric":["=",5]}]}`, map[string]filter.Attr{"price": s("5")}, false},
		{`{"price":[5]}`, map[string]filter.Attr{"price": n("5.0")}, true},
		{`{"tags":["b"]}`, map[string]filter.Attr{"tags": arr(`["a","b"]`)}, true},
		{`{"tags":["c"]}`, map[string]filter.Attr{"tags": arr(`["a","b"]`)}, false},
		{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, map[string]filter.Attr{"ip": s("10.0.0.7")}, true},
		{`{"ip":[{"cidr":"10.0.0.0/24"}]}`, map[string]filter.Attr{"ip": s("10.0.1.7")}, false},
		{`{"color":["orange"],"size":["L"]}`, map[string]filter.Attr{"color": s("orange"), "size": s("M")}, false},
		{`{"$or":[{"color":["orange"]},{"size":["L"]}]}`, map[string]filter.Attr{"size": s("L")}, true},
		{`{"$or":[{"color":["orange"]},{"size":["L"]}]}`, map[string]filter.Attr{"size": s("M")}, false},
		{`{"color":["orange"]}`, map[string]filter.Attr{"color": {Type: "Binary", Value: "orange"}}, false},
	} {
		p := filter.MustParse(tt.policy, filter.Attributes)
		if got := p.MatchAttributes(tt.attrs); got != tt.want {
			t.Errorf("%s on %v = %v, want %v", tt.policy, tt.attrs, got, tt.want)
		}
	}
}

func TestMatchBody(t *testing.T) {
	for _, tt := range []struct {
		policy, body string
		want         bool
	}{
		{`{"color":["orange"]}`, `{"color":"orange"}`, true},
		{`{"order":{"total":[{"numeric":[">",100]}]}}`, `{"order":{"total":150}}`, true},
		{`{"order":{"total":[{"numeric":[">",100]}]}}`, `{"order":{"total":50}}`, false},
		{`{"items":{"sku":["apple"]}}`, `{"items":[{"sku":"pear"},{"sku":"apple"}]}`, true},
		{`{"tags":["b"]}`, `{"tags":["a","b"]}`, true},
		{`{"vip":[true]}`, `{"vip":true}`, true},
		{`{"color":["orange"]}`, `not json`, false},
		{`{"color":[{"exists":false}]}`, `{"size":"L"}`, true},
	} {
		p := filter.MustParse(tt.policy, filter.Body)
		if got := p.MatchBody([]byte(tt.body)); got != tt.want {
			t.Errorf("%s on %s = %v, want %v", tt.policy, tt.body, got, tt.want)
		}
	}
}

func FuzzParseMatch(f *testing.F) {
	f.Add(`{"color":["orange",{"prefix":"r"}],"n":[{"numeric":[">",1]}]}`, `{"color":"orange","n":2}`)
	f.Add(`{"$or":[{"a":["1"]},{"b":[{"exists":false}]}]}`, `{"a":"1"}`)
	f.Add(`{"color":[{"wildcard":"o*n*e"},{"anything-but":{"wildcard":"*x"}}]}`, `{"color":"orange"}`)
	f.Add(`{"a.b":{"c":[{"anything-but":{"suffix":"z"}}]},"n":[{"exists":true}]}`, `{"a":{"b.c":"y"},"n":null}`)
	f.Add(`{"a":{"b":{"c":["1","2"]}},"d":{"e":["3"]}}`, `{"a.b.c":"1","d":{"e":"3"}}`)
	f.Fuzz(func(t *testing.T, policy, body string) {
		for _, scope := range []filter.Scope{filter.Attributes, filter.Body} {
			p, err := filter.Parse(policy, scope)
			if err != nil {
				var pe *filter.PolicyError
				if !errors.As(err, &pe) || !errors.Is(err, filter.ErrInvalidPolicy) || pe.Rule == "" {
					t.Fatalf("%s: %v is not a *PolicyError naming a rule", policy, err)
				}
				continue
			}
			again, err := filter.Parse(p.JSON(), scope)
			if err != nil || again.JSON() != p.JSON() {
				t.Fatalf("round trip of %s: %v", p.JSON(), err)
			}
			a := p.MatchBody([]byte(body))
			if a != p.MatchBody([]byte(body)) {
				t.Fatal("not deterministic")
			}
			p.MatchAttributes(map[string]filter.Attr{"color": {Type: "String", Value: body}, "n": {Type: "Number", Value: body}, "a": {Type: "String.Array", Value: body}})
		}
	})
}

// FuzzWildcard compares wildcard matching, and anything-but's negation of
// it, with a regular expression built from the same pattern.
func FuzzWildcard(f *testing.F) {
	f.Add("*.txt", "notes.txt")
	f.Add("a*b*c", "abbc")
	f.Add(`a\*b`, "a*b")
	f.Add("ab*ba", "aba")
	f.Add("*", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		policy, _ := json.Marshal(map[string]any{"v": []any{map[string]any{"wildcard": pattern}}})
		p, err := filter.Parse(string(policy), filter.Attributes)
		if err != nil {
			var pe *filter.PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: %v", policy, err)
			}
			return
		}
		var re strings.Builder
		re.WriteString("(?s)^")
		rs := []rune(pattern)
		for i := 0; i < len(rs); i++ {
			switch rs[i] {
			case '\\':
				i++
				re.WriteString(regexp.QuoteMeta(string(rs[i])))
			case '*':
				re.WriteString(".*")
			default:
				re.WriteString(regexp.QuoteMeta(string(rs[i])))
			}
		}
		re.WriteString("$")
		want := regexp.MustCompile(re.String()).MatchString(s)
		attrs := map[string]filter.Attr{"v": {Type: "String", Value: s}}
		if got := p.MatchAttributes(attrs); got != want {
			t.Fatalf("wildcard %q on %q = %v, want %v (%s)", pattern, s, got, want, re.String())
		}
		not, _ := json.Marshal(map[string]any{"v": []any{map[string]any{"anything-but": map[string]any{"wildcard": pattern}}}})
		if got := filter.MustParse(string(not), filter.Attributes).MatchAttributes(attrs); got == want {
			t.Fatalf("anything-but wildcard %q on %q = %v, want %v", pattern, s, got, !want)
		}
	})
}

func BenchmarkMatchAttributes(b *testing.B) {
	p := filter.MustParse(`{"color":["orange","red"],"price":[{"numeric":[">",10]}],"region":[{"anything-but":["eu"]}]}`, filter.Attributes)
	attrs := map[string]filter.Attr{"color": {Type: "String", Value: "red"}, "price": {Type: "Number", Value: "12"}, "region": {Type: "String", Value: "us"}}
	for b.Loop() {
		if !p.MatchAttributes(attrs) {
			b.Fatal("no match")
		}
	}
}
