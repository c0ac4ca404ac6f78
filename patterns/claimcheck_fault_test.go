package patterns_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/courier-aws/courier/patterns"
)

// memS3 is a patterns.ClaimCheckAPI in memory: objects by "bucket/key",
// with every GetObject and DeleteObject recorded.
type memS3 struct {
	mu      sync.Mutex
	objects map[string][]byte
	gets    []string
	deletes []string
	read    atomic.Int64 // body bytes GetObject readers handed out
	noSize  bool         // GetObject leaves ContentLength unset, as a chunked response does
}

func newMemS3() *memS3 { return &memS3{objects: map[string][]byte{}} }

func (s *memS3) put(bucket, key string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[bucket+"/"+key] = body
}

func (s *memS3) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var k []string
	for name := range s.objects {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}

func (s *memS3) calls() (gets, deletes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.gets), slices.Clone(s.deletes)
}

func (s *memS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	s.put(aws.ToString(in.Bucket), aws.ToString(in.Key), body)
	return &s3.PutObjectOutput{}, nil
}

func (s *memS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := aws.ToString(in.Bucket) + "/" + aws.ToString(in.Key)
	s.gets = append(s.gets, name)
	body, ok := s.objects[name]
	if !ok {
		return nil, &s3types.NoSuchKey{Message: aws.String(name)}
	}
	out := &s3.GetObjectOutput{Body: io.NopCloser(&countingReader{r: bytes.NewReader(body), n: &s.read})}
	if !s.noSize {
		out.ContentLength = aws.Int64(int64(len(body)))
	}
	return out, nil
}

func (s *memS3) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := aws.ToString(in.Bucket) + "/" + aws.ToString(in.Key)
	s.deletes = append(s.deletes, name)
	delete(s.objects, name)
	return &s3.DeleteObjectOutput{}, nil
}

func (s *memS3) UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return nil, errors.New("memS3: multipart not supported")
}

func (s *memS3) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return nil, errors.New("memS3: multipart not supported")
}

func (s *memS3) CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return nil, errors.New("memS3: multipart not supported")
}

func (s *memS3) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return nil, errors.New("memS3: multipart not supported")
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// A Producer removes an offloaded object only when its message was
// certainly not stored: an entry SQS refused as the sender's fault, a
// message refused before any request, a FIFO message no request carried.
// When the request failed, or SQS failed the entry on its side, the
// message may be on the queue: its object stays (the lifecycle rule is the
// backstop), or the consumer would find the pointer dangling.
func TestClaimCheckKeepsObjectWhenSendIsIndeterminate(t *testing.T) {
	const (
		standard = "https://sqs.us-east-1.amazonaws.com/123456789012/scans"
		fifo     = "https://sqs.us-east-1.amazonaws.com/123456789012/scans.fifo"
	)
	refused := entryFault{Code: "InvalidParameterValue", SenderFault: true}
	cases := []struct {
		name     string
		queue    string
		faults   map[string]entryFault
		reqErr   error
		bodies   []string
		group    string
		wantKept []string // bodies whose object must remain after Send
	}{
		{name: "request failed, outcome unknown", queue: standard, bodies: []string{"scan-1"},
			reqErr: errors.New("read tcp: connection reset by peer"), wantKept: []string{"scan-1"}},
		{name: "entry failed on SQS's side", queue: standard, bodies: []string{"scan-1", "scan-2"},
			faults: map[string]entryFault{"scan-1": {Code: "InternalError"}}, wantKept: []string{"scan-1", "scan-2"}},
		{name: "entry failed, unknown code, not the sender's fault", queue: standard, bodies: []string{"scan-1"},
			faults: map[string]entryFault{"scan-1": {Code: "ServiceBusy"}}, wantKept: []string{"scan-1"}},
		{name: "entry refused as the sender's fault", queue: standard, bodies: []string{"scan-1", "scan-2"},
			faults: map[string]entryFault{"scan-1": refused}, wantKept: []string{"scan-2"}},
		{name: "refused before any request", queue: fifo, bodies: []string{"scan-1"}, group: "",
			wantKept: nil},
		{name: "FIFO: later message of a refused group never sent", queue: fifo, group: "g",
			bodies: []string{"s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10", "s11"},
			faults: map[string]entryFault{"s01": refused},
			// s02-s10 were accepted in the request in which s01 was refused;
			// s11 was never sent.
			wantKept: []string{"s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemS3()
			cc, err := patterns.NewClaimCheck(store, "scans", func(o *patterns.ClaimCheckOptions) { o.Always = true })
			if err != nil {
				t.Fatal(err)
			}
			svc := &batchService{faults: cloneFaults(tc.faults), reqErr: tc.reqErr}
			p, err := patterns.NewProducer(fakeSQSSend{svc}, tc.queue, func(o *patterns.ProducerOptions) {
				o.ClaimCheck, o.EntryRetries, o.Concurrency = cc, 0, 1
			})
			if err != nil {
				t.Fatal(err)
			}
			var msgs []*patterns.Message
			for _, b := range tc.bodies {
				m := &patterns.Message{Body: []byte(b), GroupID: tc.group, DeduplicationID: dedup(tc.queue, b)}
				m.SetAttr("name", b)
				msgs = append(msgs, m)
			}
			if err := p.Send(context.Background(), msgs...); err == nil {
				t.Fatal("Send returned nil; every case fails a message")
			}
			var kept []string
			for _, k := range store.keys() {
				store.mu.Lock()
				kept = append(kept, string(store.objects[k]))
				store.mu.Unlock()
			}
			slices.Sort(kept)
			if !slices.Equal(kept, tc.wantKept) {
				t.Errorf("objects left %v, want %v (SQS stored %v)", kept, tc.wantKept, svc.stored())
			}
		})
	}
}

func dedup(queue, body string) string {
	if strings.HasSuffix(queue, ".fifo") {
		return body
	}
	return ""
}

// pointerMessage is a received message in the Extended Client format,
// pointing to s3://bucket/key with the declared size.
func pointerMessage(bucket, key string, size int) *patterns.Message {
	return &patterns.Message{
		ID:         "m-" + key,
		Body:       []byte(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"` + bucket + `","s3Key":"` + key + `"}]`),
		Attributes: map[string]patterns.Attribute{patterns.ExtendedPayloadSizeAttribute: {DataType: "Number", Value: strconv.Itoa(size)}},
	}
}

// Resolve reads only from the buckets (and key prefix) the consumer's
// ClaimCheck is configured with, and at most MaxPayloadBytes: a message
// naming anything else fails, before any S3 request, with an error that
// says so (the message then goes the way of every failed one: to the DLQ).
func TestClaimCheckResolveTrustsConfigNotMessage(t *testing.T) {
	payload := bigBody(4096)
	cases := []struct {
		name    string
		opts    func(*patterns.ClaimCheckOptions)
		msg     *patterns.Message
		noSize  bool // the object's size is not given in advance
		wantErr []error
		noGet   bool // no GetObject may be made
	}{
		{name: "own bucket", msg: pointerMessage("claims", "k1", len(payload))},
		{name: "bucket not configured", msg: pointerMessage("someone-elses", "k1", len(payload)),
			wantErr: []error{patterns.ErrPayloadNotAllowed}, noGet: true},
		{name: "ReadBuckets", opts: func(o *patterns.ClaimCheckOptions) { o.ReadBuckets = []string{"java-payloads"} },
			msg: pointerMessage("java-payloads", "k1", len(payload))},
		{name: "key outside ReadKeyPrefix", opts: func(o *patterns.ClaimCheckOptions) { o.ReadKeyPrefix = "orders/" },
			msg: pointerMessage("claims", "k1", len(payload)), wantErr: []error{patterns.ErrPayloadNotAllowed}, noGet: true},
		{name: "key under ReadKeyPrefix", opts: func(o *patterns.ClaimCheckOptions) { o.ReadKeyPrefix = "orders/" },
			msg: pointerMessage("claims", "orders/k1", len(payload))},
		{name: "declared size above the limit", opts: func(o *patterns.ClaimCheckOptions) { o.MaxPayloadBytes = 1024 },
			msg: pointerMessage("claims", "k1", len(payload)), wantErr: []error{patterns.ErrPayloadUnavailable, patterns.ErrMessageTooLarge}, noGet: true},
		{name: "object above the limit, size understated", opts: func(o *patterns.ClaimCheckOptions) { o.MaxPayloadBytes = 1024 },
			msg: pointerMessage("claims", "k1", 10), noSize: true, wantErr: []error{patterns.ErrPayloadUnavailable, patterns.ErrMessageTooLarge}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemS3()
			store.noSize = tc.noSize
			for _, b := range []string{"claims", "someone-elses", "java-payloads"} {
				for _, k := range []string{"k1", "orders/k1"} {
					store.put(b, k, payload)
				}
			}
			opts := []func(*patterns.ClaimCheckOptions){}
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			cc, err := patterns.NewClaimCheck(store, "claims", opts...)
			if err != nil {
				t.Fatal(err)
			}
			err = cc.Resolve(context.Background(), tc.msg)
			gets, _ := store.calls()
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Resolve: %v", err)
			case tc.wantErr == nil && !bytes.Equal(tc.msg.Body, payload):
				t.Fatalf("body not resolved: %q", tc.msg.Body[:min(len(tc.msg.Body), 40)])
			case tc.wantErr != nil && err == nil:
				t.Fatalf("Resolve returned nil (body %d bytes), want %v", len(tc.msg.Body), tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
			if tc.noGet && len(gets) > 0 {
				t.Errorf("GetObject %v made; the pointer should have been refused first", gets)
			}
			if tc.noSize && store.read.Load() > 1025 {
				t.Errorf("read %d bytes of the object; the limit is 1024", store.read.Load())
			}
			if tc.wantErr != nil && err != nil {
				t.Logf("%v", err)
			}
		})
	}
}

// By default reads are bounded by the Extended Clients' 2 GiB, checked on
// the declared size before any request, whether it is written as an
// integer (the Extended Clients) or in the exponent form earlier courier
// releases wrote.
func TestClaimCheckDefaultReadLimit(t *testing.T) {
	if patterns.DefaultMaxPayloadBytes != 2<<30 {
		t.Errorf("DefaultMaxPayloadBytes = %d, want 2 GiB", patterns.DefaultMaxPayloadBytes)
	}
	for _, size := range []string{"2147483649", "2.147483649e+09"} {
		store := newMemS3()
		store.put("claims", "k1", []byte("x"))
		cc, _ := patterns.NewClaimCheck(store, "claims")
		m := pointerMessage("claims", "k1", 0)
		m.Attributes[patterns.ExtendedPayloadSizeAttribute] = patterns.Attribute{DataType: "Number", Value: size}
		if err := cc.Resolve(context.Background(), m); !errors.Is(err, patterns.ErrMessageTooLarge) {
			t.Errorf("a pointer declaring %s bytes: %v, want ErrMessageTooLarge", size, err)
		}
		if gets, _ := store.calls(); len(gets) > 0 {
			t.Errorf("size %s: GetObject %v made", size, gets)
		}
	}
}

// The size attribute is an integer, as the other Extended Clients write
// and read it, also for bodies of a million bytes and more.
func TestClaimCheckSizeAttributeIsAnInteger(t *testing.T) {
	store := newMemS3()
	cc, _ := patterns.NewClaimCheck(store, "claims")
	svc := &batchService{}
	p, _ := patterns.NewProducer(fakeSQSSend{svc}, "https://sqs.us-east-1.amazonaws.com/123456789012/scans", func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
	body := bigBody(1_234_567)
	if err := p.Send(context.Background(), &patterns.Message{Body: body}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1234567"}; !slices.Equal(svc.sizes, want) {
		t.Errorf("%s = %q, want %q", patterns.ExtendedPayloadSizeAttribute, svc.sizes, want)
	}
}

// claimQueue is a patterns.SQSReceiveAPI that hands out its messages once
// and records the deletes.
type claimQueue struct {
	mu      sync.Mutex
	pending []sqstypes.Message
	deleted atomic.Int64
}

func (q *claimQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	msgs := q.pending
	q.pending = nil
	q.mu.Unlock()
	if len(msgs) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
}

func (q *claimQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	q.deleted.Add(int64(len(in.Entries)))
	return out, nil
}

func (q *claimQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, sqstypes.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (q *claimQueue) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"VisibilityTimeout": "30"}}, nil
}

// wirePointer is a pointer message as SQS delivers it; header, when set,
// goes into courier's header attribute (what a sender controls).
func wirePointer(bucket, key string, size int, header url.Values) sqstypes.Message {
	attrs := map[string]sqstypes.MessageAttributeValue{
		patterns.ExtendedPayloadSizeAttribute: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(size))},
	}
	if header != nil {
		attrs[patterns.HeaderAttribute] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(header.Encode())}
	}
	return sqstypes.Message{
		MessageId:         aws.String("m-" + bucket + "-" + key),
		ReceiptHandle:     aws.String("rh-" + bucket + "-" + key),
		Body:              aws.String(`["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"` + bucket + `","s3Key":"` + key + `"}]`),
		MessageAttributes: attrs,
		Attributes:        map[string]string{"ApproximateReceiveCount": "1"},
	}
}

// Whether a consumer removes objects after delete is its configuration
// (RemoveAfterDelete, its own bucket under KeyPrefix), not what a message
// claims: a sender's "claim=queue" header removes nothing by default, nor
// anything outside the consumer's own bucket. A pointer to a bucket the
// consumer does not read from fails the message: not deleted, no S3 call.
func TestClaimCheckConsumerDecidesRemoval(t *testing.T) {
	owned := url.Values{"claim": {"queue"}} // what courier's Producer used to write
	cases := []struct {
		name        string
		opts        func(*patterns.ClaimCheckOptions)
		msgs        []sqstypes.Message
		wantHandled int
		wantRemoved []string
	}{
		{name: "default: the message's header removes nothing",
			msgs:        []sqstypes.Message{wirePointer("claims", "k1", 5, owned), wirePointer("claims", "k2", 5, nil)},
			wantHandled: 2},
		{name: "RemoveAfterDelete: own bucket only, header or not",
			opts: func(o *patterns.ClaimCheckOptions) {
				o.RemoveAfterDelete, o.ReadBuckets = true, []string{"java-payloads"}
			},
			msgs:        []sqstypes.Message{wirePointer("claims", "k1", 5, nil), wirePointer("java-payloads", "k1", 5, owned)},
			wantHandled: 2, wantRemoved: []string{"claims/k1"}},
		{name: "RemoveAfterDelete: outside KeyPrefix stays",
			opts: func(o *patterns.ClaimCheckOptions) {
				o.RemoveAfterDelete, o.KeyPrefix = true, "orders/"
			},
			msgs:        []sqstypes.Message{wirePointer("claims", "orders/k1", 5, nil), wirePointer("claims", "k2", 5, owned)},
			wantHandled: 2, wantRemoved: []string{"claims/orders/k1"}},
		{name: "bucket not allowed: the message fails",
			msgs:        []sqstypes.Message{wirePointer("someone-elses", "k1", 5, owned), wirePointer("claims", "k1", 5, nil)},
			wantHandled: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemS3()
			for _, name := range []string{"claims/k1", "claims/k2", "claims/orders/k1", "java-payloads/k1", "someone-elses/k1"} {
				b, k, _ := strings.Cut(name, "/")
				store.put(b, k, []byte("hello"))
			}
			var opts []func(*patterns.ClaimCheckOptions)
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			cc, err := patterns.NewClaimCheck(store, "claims", opts...)
			if err != nil {
				t.Fatal(err)
			}
			q := &claimQueue{pending: tc.msgs}
			c, err := patterns.NewConsumer(q, "https://sqs.us-east-1.amazonaws.com/123456789012/scans", func(o *patterns.ConsumerOptions) {
				o.ClaimCheck = cc
				o.WaitTime = time.Second
				o.VisibilityTimeout = 30 * time.Second
				o.AckInterval = time.Millisecond
				o.Logger = discardLogger()
			})
			if err != nil {
				t.Fatal(err)
			}
			var handled atomic.Int64
			stop := runFor(t, func(ctx context.Context) error {
				return c.Run(ctx, func(context.Context, *patterns.Message) error { handled.Add(1); return nil })
			})
			waitFor(t, 10*time.Second, "every message handled or failed and the deletes confirmed", func() bool {
				s := c.Stats()
				return s.Handled+s.Failed == int64(len(tc.msgs)) && s.Deleted == s.Handled
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			gets, deletes := store.calls()
			slices.Sort(deletes)
			if int(handled.Load()) != tc.wantHandled || !slices.Equal(deletes, tc.wantRemoved) {
				t.Errorf("handled %d, objects removed %v; want %d, %v", handled.Load(), deletes, tc.wantHandled, tc.wantRemoved)
			}
			if s := c.Stats(); s.Deleted != int64(tc.wantHandled) {
				t.Errorf("%d messages deleted, want %d (a refused pointer must stay on the queue for the DLQ)", s.Deleted, tc.wantHandled)
			}
			for _, g := range gets {
				if g == "someone-elses/k1" {
					t.Errorf("read s3://%s, a bucket the consumer was not given", g)
				}
			}
		})
	}
}
