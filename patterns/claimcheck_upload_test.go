package patterns_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/courier-aws/courier/internal/backend"
	"github.com/courier-aws/courier/patterns"
)

// s3Sent is one S3 request as the SDK put it on the wire.
type s3Sent struct {
	op       string
	crc32    bool   // carries a CRC32 of its payload (header or trailer)
	checksum string // x-amz-checksum-algorithm (CreateMultipartUpload)
}

// s3Wire records the S3 requests a client sends, after the SDK added its
// checksums: which operations, in order, and what checksum each carried.
type s3Wire struct {
	mu   sync.Mutex
	sent []s3Sent
}

func (w *s3Wire) install(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("courier.test.s3Wire",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			s := s3Sent{op: awsmiddleware.GetOperationName(ctx)}
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				h := req.Header
				s.crc32 = h.Get("X-Amz-Checksum-Crc32") != "" || strings.EqualFold(h.Get("X-Amz-Trailer"), "x-amz-checksum-crc32")
				s.checksum = h.Get("X-Amz-Checksum-Algorithm")
			}
			w.mu.Lock()
			w.sent = append(w.sent, s)
			w.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (w *s3Wire) take() []s3Sent {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sent
	w.sent = nil
	return s
}

func ops(sent []s3Sent) map[string]int {
	n := map[string]int{}
	for _, s := range sent {
		n[s.op]++
	}
	return n
}

// s3Client is the backend's S3 client with more middleware.
func s3Client(b *backend.Backend, apiOptions ...func(*middleware.Stack) error) *s3.Client {
	return s3.NewFromConfig(b.Config(), func(o *s3.Options) {
		o.UsePathStyle = b.Name != "aws"
		o.APIOptions = append(o.APIOptions, apiOptions...)
	})
}

// readObject returns an object's bytes.
func readObject(t *testing.T, client *s3.Client, p *patterns.S3Pointer) []byte {
	t.Helper()
	var buf bytes.Buffer
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)},
		func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", p.Bucket, p.Key, err)
	}
	defer out.Body.Close()
	if _, err := buf.ReadFrom(out.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The upload's shape on the wire, on every backend: a body of up to 5 MiB
// (the part size) is one PutObject; a larger one is a multipart upload of
// 5 MiB parts (the last one shorter), completed and never aborted. Every
// request that carries data carries a CRC32 of it, and the multipart
// upload is created with CRC32 (S3 keeps a composite checksum of the
// parts). The object is the body, byte for byte.
func TestClaimCheckUploadShape(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		var wire s3Wire
		client := s3Client(b, wire.install)
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		cc, err := patterns.NewClaimCheck(client, bucket, func(o *patterns.ClaimCheckOptions) { o.KeyPrefix = "up/" })
		if err != nil {
			t.Fatal(err)
		}
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			size  int
			parts int // 0: one PutObject
		}{
			{size: 2 << 20},
			{size: 5 << 20},
			{size: 5<<20 + 1, parts: 2},
			{size: 10<<20 + 1, parts: 3},
		} {
			body := bigBody(c.size)
			m := &patterns.Message{Body: body}
			if err := p.Send(context.Background(), m); err != nil {
				t.Fatalf("%d bytes: %v", c.size, err)
			}
			sent := wire.take()
			n := ops(sent)
			switch {
			case m.Offloaded == nil || !strings.HasPrefix(m.Offloaded.Key, "up/") || len(m.Offloaded.Key) != len("up/")+32:
				t.Fatalf("%d bytes: pointer %+v, want a key of KeyPrefix and 32 hex digits", c.size, m.Offloaded)
			case c.parts == 0 && (len(sent) != 1 || n["PutObject"] != 1):
				t.Errorf("%d bytes: requests %v, want one PutObject", c.size, n)
			case c.parts > 0 && (n["CreateMultipartUpload"] != 1 || n["UploadPart"] != c.parts || n["CompleteMultipartUpload"] != 1 || len(sent) != c.parts+2):
				t.Errorf("%d bytes: requests %v, want a multipart upload of %d parts", c.size, n, c.parts)
			}
			for _, s := range sent {
				switch {
				case (s.op == "PutObject" || s.op == "UploadPart") && !s.crc32:
					t.Errorf("%d bytes: %s without a CRC32", c.size, s.op)
				case s.op == "CreateMultipartUpload" && s.checksum != "CRC32":
					t.Errorf("%d bytes: CreateMultipartUpload with checksum algorithm %q, want CRC32", c.size, s.checksum)
				}
			}
			if got := readObject(t, b.S3(), m.Offloaded); sha256.Sum256(got) != sha256.Sum256(body) {
				t.Errorf("%d bytes: the object holds %d bytes, not the body", c.size, len(got))
			}
			if b.Server() != nil {
				// memaws keeps the checksum S3 would: CRC32 of the body, or
				// the composite CRC32 of the parts ("-<parts>").
				head, err := b.S3().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(m.Offloaded.Key), ChecksumMode: s3types.ChecksumModeEnabled})
				if err != nil {
					t.Fatal(err)
				}
				sum, suffix := aws.ToString(head.ChecksumCRC32), ""
				if c.parts > 0 {
					suffix = "-" + string(rune('0'+c.parts))
				}
				if sum == "" || !strings.HasSuffix(sum, suffix) || (c.parts == 0 && strings.Contains(sum, "-")) {
					t.Errorf("%d bytes: stored CRC32 %q, want one ending %q", c.size, sum, suffix)
				}
			}
		}
	})
}

// failingS3 is the backend's client with UploadPart of one part failing
// (an error, or a stall until the call's context ends). It records the
// multipart uploads created and aborted.
type failingS3 struct {
	*s3.Client
	failPart  int32
	stall     bool
	injected  error
	mu        sync.Mutex
	created   []string // upload ids
	keys      []string // their keys
	aborted   []string
	abortErrs []error
}

func (f *failingS3) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	out, err := f.Client.CreateMultipartUpload(ctx, in, optFns...)
	if err == nil {
		f.mu.Lock()
		f.created = append(f.created, aws.ToString(out.UploadId))
		f.keys = append(f.keys, aws.ToString(in.Key))
		f.mu.Unlock()
	}
	return out, err
}

func (f *failingS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if aws.ToInt32(in.PartNumber) == f.failPart {
		if f.stall {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, f.injected
	}
	return f.Client.UploadPart(ctx, in, optFns...)
}

func (f *failingS3) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	out, err := f.Client.AbortMultipartUpload(ctx, in, optFns...)
	f.mu.Lock()
	f.aborted = append(f.aborted, aws.ToString(in.UploadId))
	f.abortErrs = append(f.abortErrs, err)
	f.mu.Unlock()
	return out, err
}

// uploadGone tells whether S3 no longer has a multipart upload: it is not
// listed (memaws, which does not serve ListMultipartUploads, refuses a
// part sent to it with NoSuchUpload; moto takes parts for an aborted
// upload but no longer lists it).
func uploadGone(t *testing.T, b *backend.Backend, bucket, key, id string) bool {
	t.Helper()
	ctx := context.Background()
	if b.Server() != nil {
		_, err := b.S3().UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id),
			PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("x"))})
		var ae smithy.APIError
		return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
	}
	out, err := b.S3().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.UploadId) == id {
			return false
		}
	}
	return true
}

// A multipart upload whose part fails is aborted, on every backend: S3
// keeps none of its parts (no storage billed for an upload nobody will
// complete), no object is written, no message is sent, and the Send's
// error wraps the part's error.
func TestClaimCheckUploadAbortsFailedMultipart(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		injected := errors.New("part 2 refused")
		f := &failingS3{Client: b.S3(), failPart: 2, injected: injected}
		cc, err := patterns.NewClaimCheck(f, bucket)
		if err != nil {
			t.Fatal(err)
		}
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		err = p.Send(context.Background(), &patterns.Message{Body: bigBody(6 << 20)})
		var se *patterns.SendError
		if !errors.As(err, &se) || se.Op != "PutObject" || !errors.Is(err, injected) {
			t.Fatalf("Send: %v; want a SendError of the upload wrapping the part's error", err)
		}
		checkAborted(t, b, f, bucket)
		if msgs := b.Drain(t, q.URL, 500*time.Millisecond); len(msgs) != 0 {
			t.Errorf("%d messages sent", len(msgs))
		}
	})
}

// A multipart upload that outlives CallTimeout (a part stalls) fails the
// Send with the deadline, and is aborted all the same: the abort does not
// use the expired context.
func TestClaimCheckUploadAbortsAfterCallTimeout(t *testing.T) {
	backend.Each(t, func(t *testing.T, b *backend.Backend) {
		bucket := b.CreateBucket(t)
		q := b.CreateQueue(t, backend.QueueOptions{})
		f := &failingS3{Client: b.S3(), failPart: 2, stall: true}
		cc, err := patterns.NewClaimCheck(f, bucket, func(o *patterns.ClaimCheckOptions) { o.CallTimeout = 2 * time.Second })
		if err != nil {
			t.Fatal(err)
		}
		p, err := patterns.NewProducer(b.SQS(), q.URL, func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = p.Send(context.Background(), &patterns.Message{Body: bigBody(6 << 20)})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send: %v; want the deadline", err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("Send took %v with a 2s CallTimeout", d)
		}
		checkAborted(t, b, f, bucket)
	})
}

// checkAborted checks that the one multipart upload f saw created was
// aborted (by an abort that succeeded) and that S3 no longer has it.
func checkAborted(t *testing.T, b *backend.Backend, f *failingS3, bucket string) {
	t.Helper()
	f.mu.Lock()
	created, keys, aborted, abortErrs := slices.Clone(f.created), slices.Clone(f.keys), slices.Clone(f.aborted), slices.Clone(f.abortErrs)
	f.mu.Unlock()
	if len(created) != 1 {
		t.Fatalf("%d multipart uploads created, want 1", len(created))
	}
	ok := false
	for i, id := range aborted {
		ok = ok || (id == created[0] && abortErrs[i] == nil)
	}
	if !ok {
		t.Errorf("aborts %v (errors %v): none of the upload %s went through", aborted, abortErrs, created[0])
	}
	if keys := b.Objects(t, bucket); len(keys) != 0 {
		t.Errorf("bucket holds %v", keys)
	}
	if !uploadGone(t, b, bucket, keys[0], created[0]) {
		t.Errorf("the multipart upload %s of %s is still there", created[0], keys[0])
	}
}

// discardS3 is a ClaimCheckAPI that reads what it is sent and keeps
// nothing.
type discardS3 struct{ parts atomic.Int64 }

func (*discardS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	_, err := io.Copy(io.Discard, in.Body)
	return &s3.PutObjectOutput{}, err
}

func (*discardS3) CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String("u")}, nil
}

func (d *discardS3) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	d.parts.Add(1)
	_, err := io.Copy(io.Discard, in.Body)
	return &s3.UploadPartOutput{ETag: aws.String(`"e"`)}, err
}

func (*discardS3) CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (*discardS3) AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return &s3.AbortMultipartUploadOutput{}, nil
}

func (*discardS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, errors.New("discardS3 keeps nothing")
}

func (*discardS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return &s3.DeleteObjectOutput{}, nil
}

// acceptingSQS is a patterns.SQSSendAPI that takes every message.
type acceptingSQS struct{}

func (acceptingSQS) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{MessageId: aws.String("m")}, nil
}

func (acceptingSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
	}
	return out, nil
}

// The upload reads the body where it is: uploading four 12 MiB bodies at
// once (one Send, the claim check's four uploads in parallel) allocates
// far less than one body. An uploader that copies parts into buffers of
// its own (feature/s3/transfermanager v0.5.7 takes (Concurrency+1) x
// PartSize, 30 MiB, for each multipart upload, plus the first part read
// whole, about 150 MiB here) fails this.
func TestClaimCheckUploadDoesNotCopyBody(t *testing.T) {
	s := &discardS3{}
	cc, err := patterns.NewClaimCheck(s, "bucket")
	if err != nil {
		t.Fatal(err)
	}
	p, err := patterns.NewProducer(acceptingSQS{}, "https://sqs.us-east-1.amazonaws.com/123456789012/q", func(o *patterns.ProducerOptions) { o.ClaimCheck = cc })
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]*patterns.Message, 4)
	for i := range msgs {
		msgs[i] = &patterns.Message{Body: bigBody(12 << 20)}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := p.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := s.parts.Load(); n != 4*3 {
		t.Fatalf("%d parts uploaded, want 12 (four multipart uploads of 3)", n)
	}
	alloc := float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
	t.Logf("uploading 4 x 12 MiB allocated %.1f MiB", alloc)
	if alloc > 4 {
		t.Errorf("uploading 4 x 12 MiB allocated %.1f MiB; the parts must be read from the bodies, not copied", alloc)
	}
}
