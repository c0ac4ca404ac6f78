package patterns

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Claim check: a body larger than the destination takes goes to S3, and
// the message carries a pointer to it, in the wire format of the AWS
// SQS/SNS Extended Client libraries (Java, Python, .NET), so that Go and
// other services share queues and topics both ways:
//
//	body:      ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]
//	attribute: ExtendedPayloadSize (Number): the size of the original body
//
// (older clients write SQSLargePayloadSize; both are read.) The consumer
// side (ConsumerOptions.ClaimCheck, the Lambda adapter's Options.ClaimCheck,
// or Resolve) fetches the body back before the handler sees the message,
// through SNS fan-out too, raw or enveloped.
//
// Trust: a message names its bucket and key, and anyone who can send to
// the queue writes messages. Resolve reads only from the ClaimCheck's
// bucket and ReadBuckets (under ReadKeyPrefix, when set), at most
// MaxPayloadBytes; any other pointer fails the message, which then ends in
// the dead-letter queue. Whether a consumer removes objects is its own
// configuration (RemoveAfterDelete), never something a message says.
//
// Lifecycle: by default no object is removed by courier after a send: a
// lifecycle rule on the bucket expires them. Give the bucket one that
// expires objects after the longest time a message may live (the queue's
// retention, 14 days at most, plus DLQ redrive time). A Producer removes
// an object it wrote only when its message was certainly not stored (SQS
// refused the entry as the sender's fault, or no request carried it); a
// request that failed or timed out may have stored the message, so its
// object stays. With RemoveAfterDelete, a Consumer removes the object of
// a message after the message was deleted, never before (the Java
// client's known pitfall). Objects published through SNS are shared by
// every subscription and are never removed by a consumer, nor any in
// Lambda (the event source mapping deletes the message after the
// invocation, out of the handler's sight).

// Wire format of the Extended Client libraries.
const (
	// ExtendedPayloadSizeAttribute is the attribute that marks a pointer
	// message and holds the original body's size.
	ExtendedPayloadSizeAttribute = "ExtendedPayloadSize"
	// LegacyPayloadSizeAttribute is its name in older clients, read too.
	LegacyPayloadSizeAttribute = "SQSLargePayloadSize"
	payloadPointerClass        = "software.amazon.payloadoffloading.PayloadS3Pointer"
	// legacyPointerClass is the class older Java clients (and the Python
	// client's legacy mode) name in the pointer; read, never written.
	legacyPointerClass = "com.amazon.sqs.javamessaging.MessageS3Pointer"
	// DefaultMaxPayloadBytes is the default of ClaimCheckOptions.MaxPayloadBytes:
	// 2 GiB, the largest payload the AWS Extended Client libraries write
	// ("up to a maximum of 2 GB", SQS Developer Guide, "Managing large
	// Amazon SQS messages").
	DefaultMaxPayloadBytes = 2 << 30
)

// ErrPayloadUnavailable: a pointer message's S3 object could not be read
// (missing, access denied). The message is not deleted: it comes again
// and, if the object stays missing, goes to the dead-letter queue.
var ErrPayloadUnavailable = errors.New("courier: claim check: offloaded payload unavailable")

// ErrPayloadNotAllowed: a pointer message names a bucket, or a key, that
// the ClaimCheck does not read from (its bucket and ReadBuckets, under
// ReadKeyPrefix). The message fails without any S3 request and, like any
// failed message, ends in the dead-letter queue.
var ErrPayloadNotAllowed = errors.New("courier: claim check: pointer outside the allowed buckets")

// S3Pointer locates an offloaded body.
type S3Pointer struct {
	Bucket string `json:"s3BucketName"`
	Key    string `json:"s3Key"`
}

// ClaimCheckAPI is the part of *s3.Client the claim check uses: PutObject
// for a body of up to 5 MiB, a multipart upload (CreateMultipartUpload,
// UploadPart, CompleteMultipartUpload, AbortMultipartUpload) for a larger
// one, GetObject to resolve a pointer, DeleteObject to remove an object.
// The methods are listed rather than taken from an uploader's interface,
// so that which uploader courier uses stays out of its API.
type ClaimCheckAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ ClaimCheckAPI = (*s3.Client)(nil)

// ClaimCheckOptions shapes a ClaimCheck.
type ClaimCheckOptions struct {
	// Threshold: bodies whose message (body plus attributes) is larger go
	// to S3. Default 0: what the destination takes (SQS 1 MiB, SNS 256
	// KiB). Set 262144 to match the other Extended Clients' default.
	Threshold int
	// Always sends every body through S3.
	Always bool
	// KeyPrefix goes before each object's key (a random id).
	KeyPrefix string
	// Deprecated: objects are kept unless RemoveAfterDelete is set; setting
	// both is an error.
	KeepObjects bool
	// RemoveAfterDelete lets a Consumer given this ClaimCheck remove the
	// object a message pointed to, after the message was deleted; only
	// objects in the ClaimCheck's bucket under KeyPrefix (never those of
	// ReadBuckets), and never of a message that came through SNS. Set it
	// only when what is written there is for this one queue: a raw SNS
	// subscription's messages look like a queue's, and removing a topic's
	// object takes it from every other subscription. Default false: the
	// bucket's lifecycle rule expires objects.
	RemoveAfterDelete bool
	// ReadBuckets are the buckets, besides the ClaimCheck's own, that
	// Resolve reads pointers from (other writers' buckets). A pointer to
	// any other bucket fails the message with ErrPayloadNotAllowed.
	ReadBuckets []string
	// ReadKeyPrefix, when set, is the prefix every key Resolve reads must
	// have (in any bucket it reads from).
	ReadKeyPrefix string
	// MaxPayloadBytes is the largest body offloaded and the largest object
	// Resolve reads; a larger one fails the message. Default
	// DefaultMaxPayloadBytes (2 GiB, the Extended Clients' limit); a
	// consumer bounds its memory with a smaller one.
	MaxPayloadBytes int
	// CallTimeout bounds each S3 call: an upload, a read of a payload
	// (the whole body), a removal. Default 2 minutes; raise it for payloads
	// of hundreds of megabytes on a slow link. Without it a stalled S3
	// call would hold a Send, or a message (its visibility extended by the
	// heartbeat while its handler waits), for ever. Found by internal/sim.
	CallTimeout time.Duration
}

// DefaultClaimCheckCallTimeout is ClaimCheckOptions.CallTimeout's default.
const DefaultClaimCheckCallTimeout = 2 * time.Minute

// ClaimCheck offloads large bodies to an S3 bucket and resolves pointers.
// Give it to ProducerOptions.ClaimCheck, PublisherOptions.ClaimCheck,
// ConsumerOptions.ClaimCheck or the Lambda adapter's Options.ClaimCheck.
type ClaimCheck struct {
	client   ClaimCheckAPI
	uploader *manager.Uploader
	bucket   string
	o        ClaimCheckOptions
	read     map[string]bool // buckets Resolve reads from
}

// NewClaimCheck returns a ClaimCheck on bucket.
func NewClaimCheck(client ClaimCheckAPI, bucket string, optFns ...func(*ClaimCheckOptions)) (*ClaimCheck, error) {
	o := ClaimCheckOptions{MaxPayloadBytes: DefaultMaxPayloadBytes, CallTimeout: DefaultClaimCheckCallTimeout}
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case client == nil:
		return nil, fmt.Errorf("%w: nil S3 client", ErrInvalidConfig)
	case bucket == "":
		return nil, fmt.Errorf("%w: claim check needs a bucket", ErrInvalidConfig)
	case o.Threshold < 0 || o.MaxPayloadBytes <= 0 || o.CallTimeout <= 0:
		return nil, fmt.Errorf("%w: claim check options %+v", ErrInvalidConfig, o)
	case o.KeepObjects && o.RemoveAfterDelete:
		return nil, fmt.Errorf("%w: claim check: KeepObjects and RemoveAfterDelete both set", ErrInvalidConfig)
	case slices.Contains(o.ReadBuckets, ""):
		return nil, fmt.Errorf("%w: claim check: empty bucket name in ReadBuckets", ErrInvalidConfig)
	}
	read := map[string]bool{bucket: true}
	for _, b := range o.ReadBuckets {
		read[b] = true
	}
	o.ReadBuckets = slices.Clone(o.ReadBuckets)
	return &ClaimCheck{client: client, uploader: manager.NewUploader(client), bucket: bucket, o: o, read: read}, nil
}

// Bucket returns the bucket bodies go to.
func (c *ClaimCheck) Bucket() string { return c.bucket }

// offloads reports whether m goes through S3 on a destination that takes
// limit bytes.
func (c *ClaimCheck) offloads(m *Message, limit int) bool {
	if c.o.Always {
		return true
	}
	t := c.o.Threshold
	if t == 0 || t > limit {
		t = limit
	}
	return wireSize(m.Body, m.wireAttributes()) > t
}

// sendThrough sends msgs with b, offloading the bodies that need it
// first. Bad input and failed uploads fail the call before any message is
// sent. An object whose message was certainly not stored is removed; one
// whose message may have been (a failed request, a server-side entry
// failure) stays, for the bucket's lifecycle rule.
func (c *ClaimCheck) sendThrough(ctx context.Context, b *batcher, msgs []*Message) error {
	var big []int
	for i, m := range msgs {
		if m != nil && c.offloads(m, b.maxMessage) {
			big = append(big, i)
		}
	}
	if len(big) == 0 {
		return b.sendDirect(ctx, msgs)
	}
	// Every message is checked as it will go, pointer and size attribute
	// included, before any upload: a message SQS would refuse costs no
	// object and no request.
	var failed []FailedEntry
	placeholders := slices.Clone(msgs)
	for _, i := range big {
		m := msgs[i]
		err := m.validate(c.o.MaxPayloadBytes)
		if err == nil {
			placeholders[i] = c.pointerMessage(m, c.placeholder(), b.fifo)
		}
		if err != nil {
			failed = append(failed, FailedEntry{Index: i, Message: m, Err: err})
		}
	}
	if len(failed) == 0 {
		var se *SendError
		if errors.As(b.validateAll(placeholders), &se) {
			for _, f := range se.Failed {
				if errors.Is(f.Err, ErrSendAborted) {
					continue
				}
				if placeholders[f.Index] != msgs[f.Index] && errors.Is(f.Err, ErrTooManyAttributes) {
					f.Err = fmt.Errorf("%w (the claim check's pointer adds %s, as the Extended Clients do)", f.Err, ExtendedPayloadSizeAttribute)
				}
				f.Message = msgs[f.Index]
				failed = append(failed, f)
			}
		}
	}
	if len(failed) > 0 {
		return &SendError{Op: b.op, Resource: b.resource, Failed: abortRest(msgs, failed)}
	}

	// Upload, four at a time.
	ptrs := make([]S3Pointer, len(big))
	errs := make([]error, len(big))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for j, i := range big {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ptrs[j], errs[j] = c.put(ctx, msgs[i].Body)
		})
	}
	wg.Wait()
	for j, i := range big {
		if errs[j] != nil {
			failed = append(failed, FailedEntry{Index: i, Message: msgs[i], Err: errs[j]})
		}
	}
	if len(failed) > 0 {
		for j := range big {
			if errs[j] == nil {
				c.remove(context.WithoutCancel(ctx), ptrs[j])
			}
		}
		// Nothing of this Send went to SQS: every message is reported,
		// not only those whose upload failed. Found by internal/sim.
		return &SendError{Op: "PutObject", Resource: c.bucket, Failed: abortRest(msgs, failed)}
	}

	out := slices.Clone(msgs)
	copies := map[int]*Message{}
	for j, i := range big {
		m := c.pointerMessage(msgs[i], ptrs[j], b.fifo)
		out[i], copies[i] = m, m
	}
	err := b.validateAll(out)
	if err == nil {
		err = b.sendValid(ctx, out)
	}
	notSent, refused := map[int]bool{}, map[int]bool{}
	var se *SendError
	if errors.As(err, &se) {
		for k, f := range se.Failed {
			notSent[f.Index], refused[f.Index] = true, f.refused
			se.Failed[k].Message = msgs[f.Index]
		}
	}
	for j, i := range big {
		if notSent[i] {
			if refused[i] {
				c.remove(context.WithoutCancel(ctx), ptrs[j])
			}
			continue
		}
		msgs[i].ID, msgs[i].SequenceNumber = copies[i].ID, copies[i].SequenceNumber
		p := ptrs[j]
		msgs[i].Offloaded = &p
	}
	return err
}

// pointerMessage returns the message that goes instead of m when its body
// is at p: the pointer body, m's attributes plus the size attribute, and
// nothing else of the claim check's (docs/wire.md, "Claim check").
func (c *ClaimCheck) pointerMessage(m *Message, p S3Pointer, fifo bool) *Message {
	out := *m
	out.Body, _ = json.Marshal([]any{payloadPointerClass, p})
	out.Attributes = maps.Clone(m.Attributes)
	if out.Attributes == nil {
		out.Attributes = map[string]Attribute{}
	}
	// An integer, as the other Extended Clients write it.
	out.Attributes[ExtendedPayloadSizeAttribute] = Attribute{DataType: TypeNumber, Value: strconv.Itoa(len(m.Body))}
	out.Headers = maps.Clone(m.Headers)
	if fifo && out.DeduplicationID == "" {
		// The pointer differs on every send; deduplicate by the payload.
		sum := sha256.Sum256(m.Body)
		out.DeduplicationID = hex.EncodeToString(sum[:])
	}
	return &out
}

// placeholder is a pointer of the length put's pointers have, to check
// messages before any upload.
func (c *ClaimCheck) placeholder() S3Pointer {
	return S3Pointer{Bucket: c.bucket, Key: c.o.KeyPrefix + strings.Repeat("0", 32)}
}

// put uploads body under a new key: one PutObject up to the uploader's
// part size (5 MiB), a multipart upload of 5 MiB parts, five at a time,
// above it. The uploader reads the parts in place (io.SectionReader over
// the body, no copy of it) and aborts a multipart upload that fails.
func (c *ClaimCheck) put(ctx context.Context, body []byte) (S3Pointer, error) {
	var r [16]byte
	_, _ = rand.Read(r[:])
	p := S3Pointer{Bucket: c.bucket, Key: c.o.KeyPrefix + hex.EncodeToString(r[:])}
	callCtx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	defer cancel()
	_, err := c.uploader.Upload(callCtx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key), Body: bytes.NewReader(body)})
	if err == nil {
		return p, nil
	}
	// The uploader aborts a failed multipart upload with the call's
	// context; when that context is what ended the upload (CallTimeout, or
	// the caller's cancellation), the abort never leaves, and S3 keeps the
	// parts (and bills them) until a lifecycle rule's
	// AbortIncompleteMultipartUpload. Abort it again on a fresh deadline.
	var mu manager.MultiUploadFailure
	if errors.As(err, &mu) && callCtx.Err() != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.CallTimeout)
		defer acancel()
		_, _ = c.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key), UploadId: aws.String(mu.UploadID())})
	}
	return p, fmt.Errorf("courier: claim check: upload to s3://%s/%s: %w", p.Bucket, p.Key, err)
}

// remove deletes an object, best effort: a lifecycle rule is the backstop.
func (c *ClaimCheck) remove(ctx context.Context, p S3Pointer) {
	ctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	defer cancel()
	_, _ = c.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)})
}

// ParseS3Pointer reads a pointer body of the Extended Client format (the
// current class name or the legacy com.amazon.sqs.javamessaging.MessageS3Pointer).
// ok is false when body is not one.
func ParseS3Pointer(body []byte) (p S3Pointer, ok bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '[' {
		return p, false
	}
	var parts []json.RawMessage
	if json.Unmarshal(b, &parts) != nil || len(parts) != 2 {
		return p, false
	}
	var class string
	if json.Unmarshal(parts[0], &class) != nil || (class != payloadPointerClass && class != legacyPointerClass) {
		return p, false
	}
	if json.Unmarshal(parts[1], &p) != nil || p.Bucket == "" || p.Key == "" {
		return S3Pointer{}, false
	}
	return p, true
}

// Resolve replaces the body of a pointer message with the offloaded
// payload and records where it came from in m.Offloaded; other messages
// are left alone. A message is a pointer when it has the
// ExtendedPayloadSize (or SQSLargePayloadSize) attribute and its body is
// a pointer; the attribute is removed, as the other clients do.
func (c *ClaimCheck) Resolve(ctx context.Context, m *Message) error {
	attr := ExtendedPayloadSizeAttribute
	a, ok := m.Attributes[attr]
	if !ok {
		attr = LegacyPayloadSizeAttribute
		if a, ok = m.Attributes[attr]; !ok {
			return nil
		}
	}
	p, ok := ParseS3Pointer(m.Body)
	if !ok {
		return fmt.Errorf("%w: message %s has %s but its body is not an S3 pointer", ErrMalformedMessage, m.ID, attr)
	}
	if !c.read[p.Bucket] || !strings.HasPrefix(p.Key, c.o.ReadKeyPrefix) {
		return fmt.Errorf("%w: message %s points to s3://%s/%s; this consumer reads from %s (ClaimCheckOptions.ReadBuckets, ReadKeyPrefix)",
			ErrPayloadNotAllowed, m.ID, p.Bucket, p.Key, c.readScope())
	}
	limit := int64(c.o.MaxPayloadBytes)
	declared, sizeErr := parseSize(a.Value)
	if sizeErr == nil && declared > limit {
		return c.tooLarge(p, m, declared)
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	defer cancel()
	// An object without a stored checksum (written by another client, or
	// by a multipart upload) is read unvalidated; the SDK would log that
	// on every message.
	out, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)},
		func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if err != nil {
		if objectMissing(err) {
			return fmt.Errorf("%w: s3://%s/%s does not exist (message %s)", ErrPayloadUnavailable, p.Bucket, p.Key, m.ID)
		}
		return fmt.Errorf("%w: s3://%s/%s: %w", ErrPayloadUnavailable, p.Bucket, p.Key, err)
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > limit {
		return c.tooLarge(p, m, n)
	}
	body, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%w: s3://%s/%s: read: %w", ErrPayloadUnavailable, p.Bucket, p.Key, err)
	}
	if int64(len(body)) > limit {
		return c.tooLarge(p, m, int64(len(body)))
	}
	if sizeErr == nil && declared != int64(len(body)) {
		return fmt.Errorf("%w: s3://%s/%s holds %d bytes, the message says %d", ErrPayloadUnavailable, p.Bucket, p.Key, len(body), declared)
	}
	m.Body = body
	m.Attributes = maps.Clone(m.Attributes)
	delete(m.Attributes, attr)
	if len(m.Attributes) == 0 {
		m.Attributes = nil
	}
	m.Offloaded = &p
	// The consumer's configuration decides, not the message; a message
	// that came through SNS can only narrow it.
	m.claimOwned = c.o.RemoveAfterDelete && p.Bucket == c.bucket && strings.HasPrefix(p.Key, c.o.KeyPrefix) && m.TopicARN == ""
	return nil
}

// parseSize reads the size attribute: an integer, or the exponent form
// earlier courier releases wrote ("5.24288e+06").
func parseSize(v string) (int64, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > math.MaxInt64 || f != math.Trunc(f) {
		return 0, fmt.Errorf("size %q is not a whole number", v)
	}
	return int64(f), nil
}

func (c *ClaimCheck) tooLarge(p S3Pointer, m *Message, n int64) error {
	return fmt.Errorf("%w: s3://%s/%s (message %s) is %d bytes, more than the %d this consumer reads (ClaimCheckOptions.MaxPayloadBytes): %w",
		ErrPayloadUnavailable, p.Bucket, p.Key, m.ID, n, c.o.MaxPayloadBytes, ErrMessageTooLarge)
}

// readScope describes where Resolve reads from, for errors.
func (c *ClaimCheck) readScope() string {
	buckets := append([]string{c.bucket}, c.o.ReadBuckets...)
	s := "s3://" + strings.Join(buckets, ", s3://")
	if c.o.ReadKeyPrefix != "" {
		s += " under " + c.o.ReadKeyPrefix
	}
	return s
}

// afterDelete removes the object of a message that was deleted, when the
// consumer's configuration allows it (RemoveAfterDelete).
func (c *ClaimCheck) afterDelete(ctx context.Context, m *Message) {
	if m.Offloaded == nil || !m.claimOwned {
		return
	}
	c.remove(ctx, *m.Offloaded)
}

// objectMissing tells whether an S3 error says the object (or its bucket)
// does not exist: the typed NoSuchKey, a not-found error code (NoSuchKey,
// NoSuchBucket, NotFound), or a bare 404 (a HEAD, or an endpoint that
// sends no code).
func objectMissing(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) || Classify(err) == KindNotFound {
		return true
	}
	var he interface{ HTTPStatusCode() int }
	return errors.As(err, &he) && he.HTTPStatusCode() == http.StatusNotFound
}
