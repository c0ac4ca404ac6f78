package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// entryFault is how a fake refuses one batch entry.
type entryFault struct {
	Code        string
	SenderFault bool
}

// batchService is the behaviour a fake SQS queue or SNS topic shares: it
// fails the entries named in faults (once each) and accepts the others, in
// request order, recording what it accepted. An entry's name is its "name"
// attribute when it has one (a claim check replaces the body), else its
// body.
type batchService struct {
	mu       sync.Mutex
	faults   map[string]entryFault // body -> fault, consumed on use
	reqErr   error                 // when set, every request fails with it
	requests int
	accepted []string // names, in the order the service stored them
	sizes    []string // ExtendedPayloadSize values received
}

type batchEntry struct{ id, name, size string }

// handle returns the ids accepted and refused.
func (s *batchService) handle(entries []batchEntry) (ok []string, failed map[string]entryFault, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.reqErr != nil {
		return nil, nil, s.reqErr
	}
	failed = map[string]entryFault{}
	for _, e := range entries {
		if e.size != "" {
			s.sizes = append(s.sizes, e.size)
		}
		if f, bad := s.faults[e.name]; bad {
			delete(s.faults, e.name)
			failed[e.id] = f
			continue
		}
		s.accepted = append(s.accepted, e.name)
		ok = append(ok, e.id)
	}
	return ok, failed, nil
}

func (s *batchService) stored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// fakeSQSSend is a patterns.SQSSendAPI on a batchService.
type fakeSQSSend struct{ *batchService }

func (f fakeSQSSend) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return nil, errors.New("fake: SendMessage not used")
}

func (f fakeSQSSend) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	var entries []batchEntry
	for _, e := range in.Entries {
		name, size := aws.ToString(e.MessageBody), aws.ToString(e.MessageAttributes[patterns.ExtendedPayloadSizeAttribute].StringValue)
		if a, ok := e.MessageAttributes["name"]; ok {
			name = aws.ToString(a.StringValue)
		}
		entries = append(entries, batchEntry{aws.ToString(e.Id), name, size})
	}
	ok, failed, err := f.handle(entries)
	if err != nil {
		return nil, err
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, id := range ok {
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: aws.String(id), MessageId: aws.String("m-" + id)})
	}
	for id, fe := range failed {
		out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String(fe.Code), SenderFault: fe.SenderFault, Message: aws.String("injected")})
	}
	return out, nil
}

// fakeSNSPublish is a patterns.SNSPublishAPI on a batchService.
type fakeSNSPublish struct{ *batchService }

func (f fakeSNSPublish) Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return nil, errors.New("fake: Publish not used")
}

func (f fakeSNSPublish) PublishBatch(_ context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	var entries []batchEntry
	for _, e := range in.PublishBatchRequestEntries {
		name, size := aws.ToString(e.Message), aws.ToString(e.MessageAttributes[patterns.ExtendedPayloadSizeAttribute].StringValue)
		if a, ok := e.MessageAttributes["name"]; ok {
			name = aws.ToString(a.StringValue)
		}
		entries = append(entries, batchEntry{aws.ToString(e.Id), name, size})
	}
	ok, failed, err := f.handle(entries)
	if err != nil {
		return nil, err
	}
	out := &sns.PublishBatchOutput{}
	for _, id := range ok {
		out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: aws.String(id), MessageId: aws.String("m-" + id)})
	}
	for id, fe := range failed {
		out.Failed = append(out.Failed, snstypes.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String(fe.Code), SenderFault: fe.SenderFault, Message: aws.String("injected")})
	}
	return out, nil
}

type fifoSender struct {
	send func(context.Context, ...*patterns.Message) error
	svc  *batchService
}

// fifoSenders returns a FIFO Producer and a FIFO-topic Publisher, each on
// its own batchService, one lane so that the batches are predictable.
func fifoSenders(t *testing.T, faults map[string]entryFault) map[string]fifoSender {
	t.Helper()
	out := map[string]fifoSender{}
	qs := &batchService{faults: cloneFaults(faults)}
	p, err := patterns.NewProducer(fakeSQSSend{qs}, "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo", func(o *patterns.ProducerOptions) {
		o.Concurrency, o.RetryBackoff = 1, time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	out["Producer"] = fifoSender{p.Send, qs}
	ts := &batchService{faults: cloneFaults(faults)}
	pub, err := patterns.NewPublisher(fakeSNSPublish{ts}, "arn:aws:sns:us-east-1:123456789012:orders.fifo", func(o *patterns.PublisherOptions) {
		o.Concurrency, o.RetryBackoff = 1, time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	out["Publisher"] = fifoSender{pub.Publish, ts}
	return out
}

func cloneFaults(m map[string]entryFault) map[string]entryFault {
	c := make(map[string]entryFault, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// A FIFO group's order never breaks when entries of a batch fail: an entry
// is not resent behind a later entry of its group that was accepted in the
// same request, and it and the rest of its group are reported not sent;
// other groups' entries are still resent. Producer (SendMessageBatch) and
// Publisher on a FIFO topic (PublishBatch) alike.
func TestFIFOBatchEntryFailureKeepsGroupOrder(t *testing.T) {
	transient := entryFault{Code: "InternalError"}
	refused := entryFault{Code: "InvalidParameterValue", SenderFault: true}
	// The messages, in the order sent: the first request takes ten, the
	// second the rest (one lane).
	bodies := []string{"a1", "a2", "b1", "b2", "c1", "c2", "c3", "c4", "c5", "c6", "a3", "b3", "d1", "d2"}
	cases := []struct {
		name        string
		faults      map[string]entryFault
		wantFailed  []string // bodies reported not sent
		wantStopped []string // of those, the ones ErrGroupStopped marks
	}{
		{
			// a2 was accepted after a1 failed: resending a1 would put it
			// behind a2. b2 failed with nothing of b accepted after it in
			// that request: it is resent, before b3.
			name:        "transient failure overtaken by its group",
			faults:      map[string]entryFault{"a1": transient, "b2": transient},
			wantFailed:  []string{"a1", "a3"},
			wantStopped: []string{"a3"},
		},
		{
			// a1 is refused for good; a2 failed too and must not be resent
			// without a1 ahead of it.
			name:        "refused entry stops its group in the same request",
			faults:      map[string]entryFault{"a1": refused, "a2": transient},
			wantFailed:  []string{"a1", "a2", "a3"},
			wantStopped: []string{"a2", "a3"},
		},
		{
			// Both of a's entries failed: resent together, in order.
			name:   "whole group in the request failed: resent in order",
			faults: map[string]entryFault{"a1": transient, "a2": transient, "d2": transient},
		},
	}
	for _, tc := range cases {
		for name, s := range fifoSenders(t, tc.faults) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				var msgs []*patterns.Message
				for _, b := range bodies {
					msgs = append(msgs, &patterns.Message{Body: []byte(b), GroupID: b[:1], DeduplicationID: b})
				}
				err := s.send(context.Background(), msgs...)

				var failed, stopped []string
				var se *patterns.SendError
				if err != nil && !errors.As(err, &se) {
					t.Fatalf("err = %v, want a *SendError", err)
				}
				if se != nil {
					for _, f := range se.Failed {
						failed = append(failed, string(f.Message.Body))
						if errors.Is(f.Err, patterns.ErrGroupStopped) {
							stopped = append(stopped, string(f.Message.Body))
							if g := fmt.Sprintf("group %q", f.Message.GroupID); !strings.Contains(f.Err.Error(), g) {
								t.Errorf("[%d] %v: want the error to name the %s", f.Index, f.Err, g)
							}
						}
					}
				}
				if !slices.Equal(failed, tc.wantFailed) || !slices.Equal(stopped, tc.wantStopped) {
					t.Errorf("reported not sent %v (group stopped %v), want %v (%v); err = %v", failed, stopped, tc.wantFailed, tc.wantStopped, err)
				}

				// What the service stored: each group in sent order, every
				// message either stored (with its id) or reported, not both.
				stored := s.svc.stored()
				pos := map[string]int{}
				for i, b := range stored {
					if _, dup := pos[b]; dup {
						t.Errorf("%s stored twice", b)
					}
					pos[b] = i
				}
				last := map[string]string{}
				for _, b := range bodies {
					if _, ok := pos[b]; !ok {
						continue
					}
					g := b[:1]
					if prev, ok := last[g]; ok && pos[prev] > pos[b] {
						t.Errorf("group %s out of order: stored %v", g, stored)
					}
					last[g] = b
				}
				for _, m := range msgs {
					_, isStored := pos[string(m.Body)]
					isFailed := slices.Contains(failed, string(m.Body))
					if isStored == isFailed || isStored != (m.ID != "") {
						t.Errorf("%s: stored %v, reported %v, id %q", m.Body, isStored, isFailed, m.ID)
					}
				}
				if t.Failed() {
					t.Logf("stored: %s", strings.Join(stored, " "))
				}
			})
		}
	}
}
