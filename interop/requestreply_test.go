package interop_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// tenant is an application header with what form encoding must carry.
const tenant = "acme & sons = 100%"

// pyResult is one request of requester.py and the reply it took.
type pyResult struct {
	CID   string `json:"cid"`
	Body  string `json:"body"`
	Reply *struct {
		Body        string              `json:"body"`
		Header      map[string]string   `json:"header"`
		Attributes  map[string]jsonAttr `json:"attributes"`
		TraceParent *string             `json:"traceparent"`
	} `json:"reply"`
	Duplicates int `json:"duplicates"`
}

// A Python requester (boto3, written from docs/wire.md) calls a courier
// Responder: a reply, and an error reply when the handler returns an
// error. The replies carry the request's cid and no ra; the error reply's
// error key and body are the handler's error text; the reply carries the
// request's traceparent (sent as the traceparent attribute, or as tp in
// courier) and the application's header reaches the handler. A request
// with v=1 is courier's; one without a cid gets an error reply without one.
func TestPythonRequesterCourierResponder(t *testing.T) {
	needPeers(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		responder, err := patterns.NewResponder(b.SQS(), q.URL, func(o *patterns.ResponderOptions) {
			o.WaitTime = time.Second
			o.Logger = logger
		})
		if err != nil {
			t.Fatal(err)
		}
		runBackground(t, func(ctx context.Context) error {
			return responder.Run(ctx, func(_ context.Context, req *patterns.Message) (*patterns.Message, error) {
				body := string(req.Body)
				if text, ok := strings.CutPrefix(body, "fail:"); ok {
					return nil, errors.New(text)
				}
				reply := &patterns.Message{Body: []byte("go:" + body + "|tenant=" + req.Header("tenant"))}
				reply.SetAttr("answered-by", "courier")
				return reply, nil
			})
		})

		job := map[string]any{
			"queue_url": q.URL,
			"timeout":   peerWait,
			"requests": []map[string]any{
				// v=1 written, which courier omits: a reader accepts it.
				{"body": "hello", "headers": map[string]string{"tenant": tenant, "v": "1"}, "traceparent": tp},
				// The traceparent as tp in courier, where it goes when the
				// attributes leave no room for its own.
				{"body": "fail:" + errText, "headers": map[string]string{"tp": tp2}},
				{"body": "no cid", "no_cid": true},
			},
		}
		var results []pyResult
		runPeer(t, b, job, &results, "requester.py")
		if len(results) != 3 || results[0].Reply == nil || results[1].Reply == nil || results[2].Reply == nil {
			t.Fatalf("requester.py returned %+v, want three requests with their replies", results)
		}

		ok, failed, noCID := results[0], results[1], results[2]
		if want := "go:hello|tenant=" + tenant; ok.Reply.Body != want {
			t.Errorf("reply body %q, want %q", ok.Reply.Body, want)
		}
		for _, r := range results {
			if r.Reply.Header["cid"] != r.CID {
				t.Errorf("reply to %q: header %v, want cid %s", r.Body, r.Reply.Header, r.CID)
			}
			if ra, has := r.Reply.Header["ra"]; has {
				t.Errorf("reply to %q carries ra=%q; docs/wire.md: a reply has no ra", r.Body, ra)
			}
		}
		if e, has := ok.Reply.Header["error"]; has {
			t.Errorf("the reply has error=%q", e)
		}
		if got := ok.Reply.Attributes["answered-by"]; got.DataType != "String" || got.StringValue != "courier" {
			t.Errorf("reply attribute answered-by = %+v, want the handler's String courier (attributes %v)", got, ok.Reply.Attributes)
		}
		if ok.Reply.TraceParent == nil || *ok.Reply.TraceParent != tp {
			t.Errorf("reply traceparent %v, want the request's %s (docs/wire.md: a reply carries the request's traceparent); attributes %v",
				ok.Reply.TraceParent, tp, ok.Reply.Attributes)
		}

		if got := failed.Reply.Header["error"]; got != errText {
			t.Errorf("error reply: error key %q, want the handler's error text %q (header %v)", got, errText, failed.Reply.Header)
		}
		if failed.Reply.Body != errText {
			t.Errorf("error reply body %q, want the error text %q", failed.Reply.Body, errText)
		}
		if failed.Reply.TraceParent == nil || *failed.Reply.TraceParent != tp2 {
			t.Errorf("error reply traceparent %v, want %s, the request's (sent as tp in courier); attributes %v",
				failed.Reply.TraceParent, tp2, failed.Reply.Attributes)
		}
		// "whose ra is allowed but that has no cid, answers it with an error
		// reply (without a cid)".
		if noCID.Reply.Header["error"] == "" || noCID.Reply.Body != noCID.Reply.Header["error"] {
			t.Errorf("request without a cid: reply %q with header %v, want an error reply", noCID.Reply.Body, noCID.Reply.Header)
		}
	})
}

// pyRequest is one request responder.py answered, as it read it.
type pyRequest struct {
	CID         string            `json:"cid"`
	RA          string            `json:"ra"`
	Header      map[string]string `json:"header"`
	Body        string            `json:"body"`
	TraceParent *string           `json:"traceparent"`
}

// A courier Requester calls a Python responder (boto3, written from
// docs/wire.md, its header keys out of order with cid repeated): its
// reply, with the responder's attribute and the
// request's traceparent, and its error reply, which the Requester returns
// as a *RemoteError with the error text. The responder saw courier's cid,
// ra (the Requester's reply queue), the application's header and the
// traceparent.
func TestCourierRequesterPythonResponder(t *testing.T) {
	needPeers(t)
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		b.NeedSocket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		py := startPeer(t, b, nil, "responder.py", q.URL, "2", peerWait)

		r, err := patterns.NewRequester(b.SQS(), func(o *patterns.RequesterOptions) { o.Logger = logger })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()

		req := &patterns.Message{Body: []byte("hello"), TraceParent: tp}
		req.SetHeader("tenant", tenant)
		reply, err := r.Request(ctx, q.URL, req)
		if err != nil {
			t.Fatalf("request to the Python responder: %v\nresponder stderr:\n%s", err, py.stop())
		}
		if string(reply.Body) != "py:hello" || reply.Attr("answered-by") != "python" {
			t.Errorf("reply %q with attributes %v, want py:hello with answered-by=python", reply.Body, reply.Attributes)
		}
		if reply.TraceParent != tp {
			t.Errorf("reply traceparent %q, want %q", reply.TraceParent, tp)
		}

		_, err = r.Request(ctx, q.URL, &patterns.Message{Body: []byte("fail:" + errText)})
		var remote *patterns.RemoteError
		switch {
		case !errors.As(err, &remote):
			t.Errorf("error reply: Request returned %v, want a *RemoteError", err)
		case remote.Message != errText:
			t.Errorf("RemoteError.Message %q, want the Python responder's error text %q", remote.Message, errText)
		case remote.Queue != q.URL || remote.CorrelationID == "":
			t.Errorf("RemoteError queue %q, correlation id %q: want %s and the request's", remote.Queue, remote.CorrelationID, q.URL)
		}

		var seen []pyRequest
		py.wait(&seen)
		if len(seen) != 2 {
			t.Fatalf("the Python responder answered %+v, want two requests", seen)
		}
		for _, s := range seen {
			if s.RA != r.ReplyQueueURL() || s.CID == "" {
				t.Errorf("request %q: cid %q, ra %q; want a cid and ra = the reply queue %s", s.Body, s.CID, s.RA, r.ReplyQueueURL())
			}
		}
		if seen[0].Header["tenant"] != tenant {
			t.Errorf("request header %v, want tenant=%q", seen[0].Header, tenant)
		}
		if seen[0].TraceParent == nil || *seen[0].TraceParent != tp {
			t.Errorf("request traceparent %v, want %s", seen[0].TraceParent, tp)
		}
	})
}
