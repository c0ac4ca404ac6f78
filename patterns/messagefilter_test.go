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
type filterCase struct {
	name   string
	policy string
	scope  filter.Scope
}

var filterCorpus = []filterCase{
	{"orange", `{"color":["orange"]}`, filter.Attributes},
	{"orange-body", `{"color":["orange"]}`, filter.Body},
	{"or", `{"$or":[{"color":["orange"]},{"size":["L"]}]}`, filter.Attributes},
	{"prefix", `{"color":[{"prefix":"re"}]}`, filter.Attributes},
	{"anything-but", `{"color":[{"anything-but":["orange","red"]}]}`, filter.Attributes},
	{"numeric", `{"price":[{"numeric":[">",10,"<=",100]}]}`, filter.Attributes},
	{"not-exists", `{"size":[{"exists":false}]}`, filter.Attributes},
	{"nested-body", `{"order":{"total":[{"numeric":[">=",100]}]}}`, filter.Body},
}

// filterMessages: every combination the corpus cares about.
func filterMessages() []*patterns.Message {
	var out []*patterns.Message
	i := 0
	for _, color := range []string{"orange", "red", "green", "Orange"} {
		for _, size := range []string{"", "L"} {
			for _, price := range []string{"5", "50"} {
				total := 20 * (i + 1)
				m := &patterns.Message{Body: []byte(fmt.Sprintf(`{"id":%d,"color":%q,"order":{"total":%d}}`, i, color, total))}
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

func attrsOf(m *patterns.Message) map[string]filter.Attr {
	out := map[string]filter.Attr{}
	for k, a := range m.Attributes {
		out[k] = filter.Attr{Type: a.DataType, Value: a.Value}
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
		for _, c := range filterCorpus {
			p := filter.MustParse(c.policy, c.scope)
			q := b.CreateQueue(t, backend.QueueOptions{})
			if _, err := patterns.Chain(ctx, b.SNS(), b.SQS(), topic, q.URL, patterns.ChainOptions{Raw: true, Filter: p}); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			urls[c.name] = q.URL
			for _, m := range msgs {
				if p.Match(attrsOf(m), m.Body) {
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
		for _, c := range filterCorpus {
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
	} {
		_, err := patterns.Chain(context.Background(), b.SNS(&rc), b.SQS(&rc), topic, queue, patterns.ChainOptions{FilterPolicy: policy})
		if !errors.Is(err, patterns.ErrInvalidFilterPolicy) || !strings.Contains(err.Error(), names) {
			t.Errorf("%s: %v, want ErrInvalidFilterPolicy naming %s", policy, err, names)
		}
	}
	if rc.Total() != 0 {
		t.Errorf("%d requests sent for invalid policies", rc.Total())
	}
}
