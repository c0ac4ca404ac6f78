package filter_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns/filter"
)

// Wildcard and anything-but forms. Cases from the SNS Developer Guide,
// "String value matching" (wildcard, anything-but with prefix, suffix and
// wildcard) and "Filter policy constraints" ("Wildcard pattern usage
// guidelines": the *.txt / log* example).
func TestMatchWildcard(t *testing.T) {
	s := func(v string) map[string]filter.Attr {
		return map[string]filter.Attr{"v": {Type: "String", Value: v}}
	}
	for _, tt := range []struct {
		policy string
		attrs  map[string]filter.Attr
		want   bool
	}{
		{`{"v":[{"wildcard":"*.txt"}]}`, s("notes.txt"), true},
		{`{"v":[{"wildcard":"*.txt"}]}`, s("notes.png"), false},
		{`{"v":[{"wildcard":"log*"}]}`, s("log-2024"), true},
		{`{"v":[{"wildcard":"log*"}]}`, s("catalog"), false},
		{`{"v":[{"wildcard":"*ball"}]}`, s("baseball"), true},
		{`{"v":[{"wildcard":"*ball"}]}`, s("rugby"), false},
		{`{"v":[{"wildcard":"*"}]}`, s("anything"), true},
		{`{"v":[{"wildcard":"a*b*c"}]}`, s("axxbyyc"), true},
		{`{"v":[{"wildcard":"a*b*c"}]}`, s("abc"), true},
		{`{"v":[{"wildcard":"a*b*c"}]}`, s("acb"), false},
		{`{"v":[{"wildcard":"ab*ba"}]}`, s("aba"), false}, // segments may not overlap
		{`{"v":[{"wildcard":"a\\*b"}]}`, s("a*b"), true},  // \* is a literal star
		{`{"v":[{"wildcard":"a\\*b"}]}`, s("axb"), false},
		{`{"v":[{"wildcard":"no-star"}]}`, s("no-star"), true},
		{`{"v":[{"wildcard":"*ball"}]}`, map[string]filter.Attr{"v": {Type: "String.Array", Value: `["rugby","football"]`}}, true},
		{`{"v":[{"wildcard":"*ball"}]}`, map[string]filter.Attr{"v": {Type: "Number", Value: "5"}}, false},
		{`{"v":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, s("/usr/bin/go"), true},
		{`{"v":[{"anything-but":{"wildcard":"*/lib/*"}}]}`, s("/usr/lib/go"), false},
		{`{"v":[{"anything-but":{"suffix":".txt"}}]}`, s("a.png"), true},
		{`{"v":[{"anything-but":{"suffix":".txt"}}]}`, s("a.txt"), false},
		{`{"v":[{"anything-but":{"prefix":"bas"}}]}`, s("rugby"), true},
		{`{"v":[{"anything-but":{"prefix":"bas"}}]}`, s("baseball"), false},
		{`{"v":[{"anything-but":{"suffix":".txt"}}]}`, map[string]filter.Attr{"w": {Type: "String", Value: "x"}}, false}, // absent key
	} {
		p := filter.MustParse(tt.policy, filter.Attributes)
		if got := p.MatchAttributes(tt.attrs); got != tt.want {
			t.Errorf("%s on %v = %v, want %v", tt.policy, tt.attrs, got, tt.want)
		}
		b := filter.MustParse(tt.policy, filter.Body)
		if v, ok := tt.attrs["v"]; ok && v.Type == "String" {
			body := `{"v":` + jsonString(v.Value) + `}`
			if got := b.MatchBody([]byte(body)); got != tt.want {
				t.Errorf("%s on body %s = %v, want %v", tt.policy, body, got, tt.want)
			}
		}
	}
}

func jsonString(s string) string {
	out := []byte{'"'}
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}

// A body key is matched as SNS flattens keys, joined by dots, so a dotted
// policy key finds nested objects, keys that themselves hold the dot, and
// the mixed forms. (AWS behaviour, recorded in LocalStack 4.14.0's
// services/sns/filter.py, which follows it; localstack/FIDELITY.md.)
func TestMatchBodyDottedKeys(t *testing.T) {
	for _, tt := range []struct {
		policy, body string
		want         bool
	}{
		{`{"a.b":["x"]}`, `{"a":{"b":"x"}}`, true},
		{`{"a.b":["x"]}`, `{"a.b":"x"}`, true},
		{`{"a":{"b":["x"]}}`, `{"a.b":"x"}`, true},
		{`{"a":{"b":["x"]}}`, `{"a":{"b":"y"}}`, false},
		{`{"a.b.c":["x"]}`, `{"a":{"b.c":"x"}}`, true},
		{`{"a.b.c":["x"]}`, `{"a.b":{"c":"x"}}`, true},
		{`{"a":{"b.c":["x"]}}`, `{"a":{"b":{"c":"x"}}}`, true},
		{`{"a.b.c":["x"]}`, `{"a":{"bc":"x"}}`, false},
		{`{"a.b":["x"]}`, `{"ab":"x"}`, false},
		{`{"a.b":["x"]}`, `{"a":[{"b":"y"},{"b.c":"x"},{"b":"x"}]}`, true},
		{`{"a.b":["x"]}`, `{"a":{"b":"y"},"a.b":"x"}`, true}, // any of the splits
	} {
		p := filter.MustParse(tt.policy, filter.Body)
		if got := p.MatchBody([]byte(tt.body)); got != tt.want {
			t.Errorf("%s on %s = %v, want %v", tt.policy, tt.body, got, tt.want)
		}
	}
}

func TestBuilderKeyPath(t *testing.T) {
	p, err := filter.OnBody().KeyPath([]string{"order", "ship.to"}, filter.Wildcard("*-eu")).Key("order.total", 5).Build()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"order":{"ship.to":[{"wildcard":"*-eu"}],"total":[5]}}`; p.JSON() != want {
		t.Errorf("JSON %s, want %s", p.JSON(), want)
	}
	if !p.MatchBody([]byte(`{"order":{"ship":{"to":"de-eu"},"total":5}}`)) {
		t.Error("no match")
	}
	if _, err := filter.Attrs().KeyPath([]string{"a", "b"}, "x").Build(); !isRule(err, filter.RuleNesting) {
		t.Errorf("a nested attribute path: %v, want RuleNesting", err)
	}
	a, err := filter.Attrs().KeyPath([]string{"a.b"}, filter.AnythingButSuffix(".txt"), filter.AnythingButWildcard("x*")).Build()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a.b":[{"anything-but":{"suffix":".txt"}},{"anything-but":{"wildcard":"x*"}}]}`; a.JSON() != want {
		t.Errorf("JSON %s, want %s", a.JSON(), want)
	}
}

// "exists" in a body, SNS Developer Guide, "Key matching": exists works
// on leaf nodes only and "the key must have a non-null and non-empty
// value"; "exists": false is taken as its complement.
func TestMatchBodyExists(t *testing.T) {
	for _, tt := range []struct {
		body      string
		present   bool // {"store":[{"exists":true}]} matches
		notExists bool // {"store":[{"exists":false}]} matches
	}{
		{`{"store":"fans"}`, true, false},
		{`{"store":0}`, true, false},
		{`{"store":false}`, true, false},
		{`{"store":["a"]}`, true, false},
		{`{"store":null}`, false, true},
		{`{"store":""}`, false, true},
		{`{"store":{"name":"fans"}}`, false, true}, // an intermediate node
		{`{"store":[]}`, false, true},
		{`{"other":1}`, false, true},
	} {
		yes := filter.MustParse(`{"store":[{"exists":true}]}`, filter.Body)
		no := filter.MustParse(`{"store":[{"exists":false}]}`, filter.Body)
		if got := yes.MatchBody([]byte(tt.body)); got != tt.present {
			t.Errorf("exists:true on %s = %v, want %v", tt.body, got, tt.present)
		}
		if got := no.MatchBody([]byte(tt.body)); got != tt.notExists {
			t.Errorf("exists:false on %s = %v, want %v", tt.body, got, tt.notExists)
		}
	}
	// A null still matches a null condition: exists is about presence only.
	if !filter.MustParse(`{"store":[null]}`, filter.Body).MatchBody([]byte(`{"store":null}`)) {
		t.Error("[null] does not match null")
	}
}

func isRule(err error, r filter.Rule) bool {
	var pe *filter.PolicyError
	return errors.As(err, &pe) && pe.Rule == r && errors.Is(err, filter.ErrInvalidPolicy)
}

// Refusals as fields: the rule, the path and the limit. Limits from the
// SNS Developer Guide, "Filter policy constraints" (its examples: 3x1x2 =
// 6 combinations; nested key_c/key_e = 72; the wildcard complexity example
// = 4 points).
func TestPolicyError(t *testing.T) {
	ten := `["1","2","3","4","5","6","7","8","9","10"]`
	for _, tt := range []struct {
		name   string
		policy string
		scope  filter.Scope
		rule   filter.Rule // "" = valid
		path   []string
		limit  int
		got    int
	}{
		{"aws complexity example", `{"key_a":["value_one","value_two","value_three"],"key_b":["value_one"],"key_c":["value_one","value_two"]}`, "", "", nil, 0, 0},
		{"aws nested example (72)", `{"key_a":{"key_b":{"key_c":["value_one","value_two","value_three","value_four"]}},"key_d":{"key_e":["value_one","value_two","value_three"]}}`, filter.Body, "", nil, 0, 0},
		{"nesting multiplies", `{"a":{"b":{"c":` + ten + `}},"d":{"e":["1","2","3","4","5","6"]}}`, filter.Body, filter.RuleCombinations, []string{"d"}, 150, 360},
		{"flat the same is fine", `{"c":` + ten + `,"e":["1","2","3","4","5","6"]}`, filter.Body, "", nil, 0, 0},
		{"$or branches add up", `{"$or":[{"a":` + ten + `},{"b":` + ten + `}],"c":` + ten + `}`, "", filter.RuleCombinations, nil, 150, 200},
		{"$or within the limit", `{"$or":[{"a":` + ten + `},{"b":["1"]}],"c":` + ten + `}`, "", "", nil, 0, 0},
		{"leaf keys count", `{"a":{"b":["1"],"c":["1"],"d":["1"]},"e":{"f":["1"],"g":["1"],"h":["1"]}}`, filter.Body, filter.RuleKeys, nil, 5, 6},
		{"nested in attributes", `{"order":{"total":[1]}}`, filter.Attributes, filter.RuleNesting, []string{"order"}, 0, 0},
		{"number path", `{"order":{"total":[{"numeric":[">",1.1234567]}]}}`, filter.Body, filter.RuleNumber, []string{"order", "total"}, 0, 0},
		{"number in $or", `{"$or":[{"a":[{"numeric":["<",1.1234567]}]},{"b":["2"]}]}`, "", filter.RuleNumber, []string{"$or[0]", "a"}, 0, 0},
		{"unknown operator", `{"c":[{"regex":"x"}]}`, "", filter.RuleOperator, []string{"c"}, 0, 0},
		{"empty array", `{"c":[]}`, "", filter.RuleEmpty, []string{"c"}, 0, 0},
		{"not json", `[`, "", filter.RuleSyntax, nil, 0, 0},
		{"scope", `{"c":["x"]}`, "Everything", filter.RuleScope, nil, 0, 0},
		{"wildcard 3 stars", `{"f":[{"wildcard":"*a*b*"}]}`, "", "", nil, 0, 0},
		{"wildcard 4 stars", `{"f":[{"wildcard":"*a*b*c*"}]}`, "", filter.RuleWildcard, []string{"f"}, 3, 4},
		{"wildcard consecutive", `{"f":[{"wildcard":"a**"}]}`, "", filter.RuleWildcard, []string{"f"}, 0, 0},
		{"wildcard bad escape", `{"f":[{"wildcard":"a\\b"}]}`, "", filter.RuleWildcard, []string{"f"}, 0, 0},
		{"wildcard not a string", `{"f":[{"wildcard":1}]}`, "", filter.RuleOperand, []string{"f"}, 0, 0},
		{"wildcard in anything-but", `{"f":[{"anything-but":{"wildcard":"*a*b*c*d"}}]}`, "", filter.RuleWildcard, []string{"f"}, 3, 4},
		{"anything-but equals-ignore-case", `{"f":[{"anything-but":{"equals-ignore-case":"x"}}]}`, "", filter.RuleOperator, []string{"f"}, 0, 0},
		{"aws wildcard example (4 points)", `{"filename":[{"wildcard":"*.txt"},{"wildcard":"log*"}]}`, "", "", nil, 0, 0},
		// (3+3)x... : five patterns of two wildcards, 6 points each: 30 x 5 = 150.
		{"wildcard points", `{"f":[{"wildcard":"*a*"},{"wildcard":"*b*"},{"wildcard":"*c*"},{"wildcard":"*d*"},{"wildcard":"*e*"}]}`, "", filter.RuleWildcardPoints, nil, 100, 150},
		{"anything-but in a wildcard field", `{"greeting":[{"anything-but":{"prefix":"Hello"}},{"wildcard":"H*"}]}`, "", "", nil, 0, 0},
	} {
		_, err := filter.Parse(tt.policy, tt.scope)
		if tt.rule == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var pe *filter.PolicyError
		if !errors.As(err, &pe) || !errors.Is(err, filter.ErrInvalidPolicy) {
			t.Errorf("%s: %v, want a *PolicyError", tt.name, err)
			continue
		}
		if pe.Rule != tt.rule || !reflect.DeepEqual(pe.Path, tt.path) || pe.Limit != tt.limit || pe.Got != tt.got {
			t.Errorf("%s: %#v\nwant rule %s path %q limit %d got %d", tt.name, pe, tt.rule, tt.path, tt.limit, tt.got)
		}
	}
}

func TestAttrsFromSDK(t *testing.T) {
	want := map[string]filter.Attr{
		"color": {Type: "String", Value: "orange"},
		"price": {Type: "Number", Value: "5"},
		"blob":  {Type: "Binary"},
	}
	sqs := filter.AttrsFromSQS(map[string]sqstypes.MessageAttributeValue{
		"color": {DataType: aws.String("String"), StringValue: aws.String("orange")},
		"price": {DataType: aws.String("Number"), StringValue: aws.String("5")},
		"blob":  {DataType: aws.String("Binary"), BinaryValue: []byte("x")},
	})
	sns := filter.AttrsFromSNS(map[string]snstypes.MessageAttributeValue{
		"color": {DataType: aws.String("String"), StringValue: aws.String("orange")},
		"price": {DataType: aws.String("Number"), StringValue: aws.String("5")},
		"blob":  {DataType: aws.String("Binary"), BinaryValue: []byte("x")},
	})
	if !reflect.DeepEqual(sqs, want) || !reflect.DeepEqual(sns, want) {
		t.Errorf("SQS %v\nSNS %v\nwant %v", sqs, sns, want)
	}
	p := filter.MustParse(`{"color":["orange"],"price":[{"numeric":["<",10]}]}`, filter.Attributes)
	if !p.MatchAttributes(sqs) {
		t.Error("converted attributes do not match")
	}
}
