package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/filter"
)

// filterCase is one subscription of the differential test: its policy and
// scope; what the backend delivers must be what filter.Match predicts.
// needs names the capability a backend must have for the case to run
// (nil: every backend); a backend without it skips just that case.
type filterCase struct {
	name   string
	policy string
	scope  filter.Scope
	needs  func(backend.Capabilities) bool
}

var filterCorpus = []filterCase{
	{"orange", `{"color":["orange"]}`, filter.Attributes, nil},
	{"orange-body", `{"color":["orange"]}`, filter.Body, nil},
	{"or", `{"$or":[{"color":["orange"]},{"size":["L"]}]}`, filter.Attributes, nil},
	{"prefix", `{"color":[{"prefix":"re"}]}`, filter.Attributes, nil},
	{"anything-but", `{"color":[{"anything-but":["orange","red"]}]}`, filter.Attributes, nil},
	{"numeric", `{"price":[{"numeric":[">",10,"<=",100]}]}`, filter.Attributes, nil},
	{"not-exists", `{"size":[{"exists":false}]}`, filter.Attributes, nil},
	{"nested-body", `{"order":{"total":[{"numeric":[">=",100]}]}}`, filter.Body, nil},
	{"anything-but-prefix-body", `{"file":[{"anything-but":{"prefix":"log"}}]}`, filter.Body, nil},
	{"wildcard", `{"color":[{"wildcard":"*an*e"}]}`, filter.Attributes, func(c backend.Capabilities) bool { return c.FilterWildcard }},
	{"wildcard-body", `{"file":[{"wildcard":"*.txt"}]}`, filter.Body, func(c backend.Capabilities) bool { return c.FilterWildcard }},
	{"anything-but-wildcard", `{"color":[{"anything-but":{"wildcard":"*ang*"}}]}`, filter.Attributes, func(c backend.Capabilities) bool { return c.FilterWildcard }},
	{"anything-but-suffix", `{"color":[{"anything-but":{"suffix":"nge"}}]}`, filter.Attributes, func(c backend.Capabilities) bool { return c.FilterAnythingButSuffix }},
	{"dotted-policy-key", `{"order.total":[{"numeric":[">=",100]}]}`, filter.Body, func(c backend.Capabilities) bool { return c.FilterDottedKeys }},
	{"dotted-body-key", `{"ship":{"to":["eu"]}}`, filter.Body, func(c backend.Capabilities) bool { return c.FilterDottedKeys }},
	{"exists-body", `{"store":[{"exists":true}]}`, filter.Body, func(c backend.Capabilities) bool { return c.FilterExistsLeafOnly }},
}

// filterMessages: every combination the corpus cares about.
func filterMessages() []*patterns.Message {
	var out []*patterns.Message
	files := []string{"notes.txt", "log-1.txt", "image.png", "logo.png"}
	ships := []string{"eu", "us"}
	// store: a value, null, "", an object (an intermediate node), absent.
	stores := []string{`,"store":"fans"`, `,"store":null`, `,"store":""`, `,"store":{"name":"fans"}`, ``}
	i := 0
	for _, color := range []string{"orange", "red", "green", "Orange"} {
		for _, size := range []string{"", "L"} {
			for _, price := range []string{"5", "50"} {
				total := 20 * (i + 1)
				m := &patterns.Message{Body: []byte(fmt.Sprintf(`{"id":%d,"color":%q,"order":{"total":%d},"file":%q,"ship.to":%q%s}`,
					i, color, total, files[i%len(files)], ships[i%len(ships)], stores[i%len(stores)]))}
				m.SetAttr("color", color)
				if size != "" {
					m.SetAttr("size", size)
				}
				m.Attributes["price"] = patterns.NumberAttr(map[string]float64{"5": 5, "50": 50}[price])
				out = append(out, m)
				i++
			}
		}
	}
	return out
}

// TestMessageFilter: one topic, a queue per policy of the corpus. Each
// queue receives exactly what the local evaluator predicts: the seed's
// orange subscriber gets only orange messages, in the attribute scope, the
// body scope and through "$or".
func TestMessageFilter(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		ctx := context.Background()
		topic := b.CreateTopic(t, false, nil)
		msgs := filterMessages()
		urls := map[string]string{}
		want := map[string][]string{}
		var corpus []filterCase
		for _, c := range filterCorpus {
			if c.needs != nil && !c.needs(b.Caps) {
				t.Logf("%s: skipping %s (%s): a known deviation, see localstack/FIDELITY.md", b.Name, c.name, c.policy)
				continue
			}
			corpus = append(corpus, c)
		}
		for _, c := range corpus {
			p := filter.MustParse(c.policy, c.scope)
			q := b.CreateQueue(t, backend.QueueOptions{})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, func(o *patterns.ChainOptions) {
				o.Raw = true
				o.Filter = p
			}); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			urls[c.name] = q.URL
			for _, m := range msgs {
				if p.Match(patterns.FilterAttrs(m.Attributes), m.Body) {
					want[c.name] = append(want[c.name], string(m.Body))
				}
			}
		}
		if n := len(want["orange"]); n == 0 || n == len(msgs) {
			t.Fatalf("the corpus does not separate: %d of %d orange", n, len(msgs))
		}
		pub, _ := patterns.NewPublisher(b.SNS(), topic)
		if err := pub.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // deliveries to queues that should get nothing would arrive by now
		for _, c := range corpus {
			var got []string
			deadline := time.Now().Add(20 * time.Second)
			for len(got) < len(want[c.name]) && time.Now().Before(deadline) {
				for _, m := range b.Drain(t, urls[c.name], 500*time.Millisecond) {
					got = append(got, *m.Body)
				}
			}
			for _, m := range b.Drain(t, urls[c.name], 300*time.Millisecond) {
				got = append(got, *m.Body)
			}
			sort.Strings(got)
			sort.Strings(want[c.name])
			if strings.Join(got, "\n") != strings.Join(want[c.name], "\n") {
				t.Errorf("%s %s (%s): backend delivered %d, Match predicts %d\n got %v\nwant %v", b.Name, c.name, c.policy, len(got), len(want[c.name]), got, want[c.name])
			}
			for _, body := range got {
				if c.name == "orange" && !strings.Contains(body, `"color":"orange"`) {
					t.Errorf("the orange subscriber got %s", body)
				}
			}
		}
	})
}

// An invalid policy fails before any request, naming the problem.
func TestMessageFilterInvalidPolicy(t *testing.T) {
	var rc patterns.RequestCounter
	b, ok := backend.First()
	if !ok {
		t.Skip("BACKEND ABSENT")
	}
	topic := "arn:aws:sns:us-east-1:000000000000:orders"
	queue := "https://sqs.us-east-1.amazonaws.com/000000000000/orders"
	for policy, names := range map[string]string{
		`{"color":"orange"}`:                                `key "color"`,
		`{"price":[{"numeric":[">",2000000000]}]}`:          "outside -1e9..1e9",
		`{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}`: "6 keys",
		`{"file":[{"wildcard":"*a*b*c*"}]}`:                 "4 wildcards",
	} {
		_, err := patterns.Chain(context.Background(), b.SNS(&rc), b.SQS(&rc), topic, queue, func(o *patterns.ChainOptions) { o.FilterPolicy = policy })
		if !errors.Is(err, patterns.ErrInvalidFilterPolicy) || !strings.Contains(err.Error(), names) {
			t.Errorf("%s: %v, want ErrInvalidFilterPolicy naming %s", policy, err, names)
		}
	}
	if rc.Total() != 0 {
		t.Errorf("%d requests sent for invalid policies", rc.Total())
	}
}
