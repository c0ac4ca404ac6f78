package memaws

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Endpoint is the base URL the SDK clients of a Server are pointed at. It
// is never dialled: the Server is the clients' HTTP client.
const Endpoint = "http://memaws.invalid"

// Options configure a Server.
type Options struct {
	Region  string   // default us-east-1
	Account string   // default 123456789012
	Faults  Injector // faults of every client's calls; nil: none
	// MaxRequestBytes bounds a request body the Server reads (default 64 MiB):
	// what is larger is refused, as AWS refuses it.
	MaxRequestBytes int64
	// MaxObjectBytes bounds the bytes of every S3 object and pending
	// multipart part the Server holds (default 1 GiB): a write beyond it is
	// refused with StorageQuotaExceeded (HTTP 400, not retried), so a test
	// that leaks objects fails instead of exhausting memory.
	MaxObjectBytes int64
	// IgnoreQueuePolicies makes SNS deliver to a queue whatever its Policy
	// says, as the emulators do. By default a queue that has a Policy gets
	// only what it allows SNS to send (sns.amazonaws.com with
	// aws:SourceArn the topic), as on AWS; a queue without one gets
	// everything (AWS would drop it: tests rarely write the policy).
	IgnoreQueuePolicies bool
}

// ClientOptions configure the clients of one Config.
type ClientOptions struct {
	// Faults of this client's calls only, on top of the Server's: a
	// crashed consumer is a client whose every call hangs.
	Faults Injector
	// RetryMaxAttempts is the SDK's attempts per call (default: the SDK's, 3).
	RetryMaxAttempts int
}

// Server is an in-memory SQS, SNS and S3. It is safe for concurrent use.
type Server struct {
	opts Options

	mu      sync.Mutex
	offset  time.Duration // Advance
	changed chan struct{} // closed and replaced when something a long poll waits for changes
	seq     uint64

	sqs sqsState
	sns snsState
	s3  s3State
}

// New returns an empty Server.
func New(optFns ...func(*Options)) *Server {
	o := Options{Region: "us-east-1", Account: "123456789012", MaxRequestBytes: 64 << 20, MaxObjectBytes: 1 << 30}
	for _, fn := range optFns {
		fn(&o)
	}
	s := &Server{opts: o, changed: make(chan struct{})}
	s.sqs.init()
	s.sns.init()
	s.s3.init()
	return s
}

// Region is the Server's region, as ARNs and queue URLs name it.
func (s *Server) Region() string { return s.opts.Region }

// Account is the Server's account id, as ARNs and queue URLs name it.
func (s *Server) Account() string { return s.opts.Account }

// Config returns an SDK config whose clients talk to s.
func (s *Server) Config(optFns ...func(*ClientOptions)) aws.Config {
	var o ClientOptions
	for _, fn := range optFns {
		fn(&o)
	}
	cfg := aws.Config{
		Region:       s.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(Endpoint),
		HTTPClient:   &client{s: s, faults: o.Faults},
		// What config.LoadDefaultConfig resolves them to: S3 requests carry
		// a CRC32 and responses' checksums are checked, as for users.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	if o.RetryMaxAttempts > 0 {
		cfg.RetryMaxAttempts = o.RetryMaxAttempts
	}
	return cfg
}

// WithFaults sets a client's own Injector.
func WithFaults(inj Injector) func(*ClientOptions) {
	return func(o *ClientOptions) { o.Faults = inj }
}

// SQS returns an SQS client of s.
func (s *Server) SQS(optFns ...func(*ClientOptions)) *sqs.Client {
	return sqs.NewFromConfig(s.Config(optFns...))
}

// SNS returns an SNS client of s.
func (s *Server) SNS(optFns ...func(*ClientOptions)) *sns.Client {
	return sns.NewFromConfig(s.Config(optFns...))
}

// S3 returns an S3 client of s (path-style addressing).
func (s *Server) S3(optFns ...func(*ClientOptions)) *s3.Client {
	return s3.NewFromConfig(s.Config(optFns...), func(o *s3.Options) { o.UsePathStyle = true })
}

// Advance moves the Server's clock forward by d, as if d passed for the
// queues but not for their clients: messages in flight whose visibility
// ends within d come back, delays end, deduplication windows close.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.notifyLocked()
	s.mu.Unlock()
}

// nowLocked is the Server's clock: the real (or synctest's) clock plus
// what Advance added. s.mu held.
func (s *Server) nowLocked() time.Time { return time.Now().Add(s.offset) }

// notifyLocked wakes every long poll to look again. s.mu held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextID returns a fresh sequence number. s.mu held.
func (s *Server) nextID() uint64 {
	s.seq++
	return s.seq
}

// client is the aws.HTTPClient of one Config.
type client struct {
	s      *Server
	faults Injector
}

// request is what a service handler gets.
type request struct {
	ctx   context.Context
	http  *http.Request
	body  []byte
	fault Fault
}

// entryError returns the injected failure of batch entry i, if any.
func (r *request) entryError(i int) (EntryError, bool) {
	e, ok := r.fault.FailEntries[i]
	return e, ok
}

// Do serves one SDK request.
func (c *client) Do(hr *http.Request) (*http.Response, error) {
	s := c.s
	ctx := hr.Context()
	var body []byte
	if hr.Body != nil {
		b, err := io.ReadAll(io.LimitReader(hr.Body, s.opts.MaxRequestBytes+1))
		_ = hr.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	service := signingService(hr)
	call := Call{Service: service, Attempt: attempt(hr), Body: body}
	var form url.Values
	switch service {
	case "sqs":
		call.Operation = strings.TrimPrefix(hr.Header.Get("X-Amz-Target"), "AmazonSQS.")
		var probe struct {
			QueueUrl string
			Entries  []json.RawMessage
		}
		_ = json.Unmarshal(body, &probe)
		call.Resource, call.Entries = probe.QueueUrl, len(probe.Entries)
	case "sns":
		form, _ = url.ParseQuery(string(body))
		call.Operation = form.Get("Action")
		call.Resource = form.Get("TopicArn")
		if call.Resource == "" {
			call.Resource = form.Get("SubscriptionArn")
		}
		for i := 1; form.Has("PublishBatchRequestEntries.member." + strconv.Itoa(i) + ".Id"); i++ {
			call.Entries = i
		}
	case "s3":
		call.Operation, call.Resource = s3Operation(hr)
	default:
		return nil, fmt.Errorf("memaws: no service %q (the request was signed for it)", service)
	}

	var f Fault
	if s.opts.Faults != nil {
		f = s.opts.Faults.Inject(call)
	}
	if c.faults != nil {
		f = f.merge(c.faults.Inject(call))
	}
	if f.Hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var resp *http.Response
	if f.Err != nil {
		resp = writeError(service, call.Operation, f.Err)
	} else if int64(len(body)) > s.opts.MaxRequestBytes {
		resp = writeError(service, call.Operation, &APIError{Status: 413, Code: "RequestEntityTooLarge", Message: "request body too large"})
	} else {
		r := &request{ctx: ctx, http: hr, body: body, fault: f}
		switch service {
		case "sqs":
			resp = s.serveSQS(r, call.Operation)
		case "sns":
			resp = s.serveSNS(r, call.Operation, form)
		case "s3":
			resp = s.serveS3(r, call.Operation)
		}
		if resp == nil { // the context ended while the call waited (a long poll)
			return nil, ctx.Err()
		}
		if f.LoseResponse {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
	}
	resp.Request = hr
	return resp, nil
}

// signingService reads the service from the SigV4 credential scope:
// Credential=AKID/DATE/REGION/SERVICE/aws4_request.
func signingService(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// attempt reads the SDK's amz-sdk-request header: "attempt=2; max=3".
func attempt(r *http.Request) int {
	h := r.Header.Get("Amz-Sdk-Request")
	for _, kv := range strings.Split(h, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "attempt="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return 1
}

// response builds an http.Response.
func response(status int, contentType string, body []byte) *http.Response {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("X-Amzn-Requestid", "memaws")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}

// jsonResponse is an SQS (JSON 1.0) success.
func jsonResponse(v any) *http.Response {
	b, err := json.Marshal(v)
	if err != nil {
		return writeError("sqs", "", &APIError{Status: 500, Code: "InternalError", Message: err.Error()})
	}
	return response(http.StatusOK, "application/x-amz-json-1.0", b)
}

// queryResponse is an SNS (query protocol) success: result is the inner
// XML of <OpResult>, already escaped.
func queryResponse(op string, result []byte) *http.Response {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<%sResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><%sResult>`, op, op)
	b.Write(result)
	fmt.Fprintf(&b, `</%sResult><ResponseMetadata><RequestId>memaws</RequestId></ResponseMetadata></%sResponse>`, op, op)
	return response(http.StatusOK, "text/xml", b.Bytes())
}

// sqsQueryCodes are the query-compatible codes SQS sends in
// x-amzn-query-error beside the JSON error type.
var sqsQueryCodes = map[string]string{
	"QueueDoesNotExist":              "AWS.SimpleQueueService.NonExistentQueue",
	"QueueDeletedRecently":           "AWS.SimpleQueueService.QueueDeletedRecently",
	"QueueNameExists":                "QueueAlreadyExists",
	"BatchEntryIdsNotDistinct":       "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
	"BatchRequestTooLong":            "AWS.SimpleQueueService.BatchRequestTooLong",
	"EmptyBatchRequest":              "AWS.SimpleQueueService.EmptyBatchRequest",
	"InvalidBatchEntryId":            "AWS.SimpleQueueService.InvalidBatchEntryId",
	"TooManyEntriesInBatchRequest":   "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
	"UnsupportedOperation":           "AWS.SimpleQueueService.UnsupportedOperation",
	"PurgeQueueInProgress":           "AWS.SimpleQueueService.PurgeQueueInProgress",
	"ReceiptHandleIsInvalid":         "ReceiptHandleIsInvalid",
	"MessageNotInflight":             "AWS.SimpleQueueService.MessageNotInflight",
	"InvalidAttributeName":           "InvalidAttributeName",
	"InvalidMessageContents":         "InvalidMessageContents",
	"RequestThrottled":               "RequestThrottled",
	"ThrottlingException":            "ThrottlingException",
	"InvalidParameterValueException": "InvalidParameterValue",
}

// writeError encodes e as the service sends errors.
func writeError(service, op string, e *APIError) *http.Response {
	fault := "Sender"
	if !e.senderFault() {
		fault = "Receiver"
	}
	switch service {
	case "sqs":
		b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + e.Code, "message": e.Message})
		resp := response(e.Status, "application/x-amz-json-1.0", b)
		q := sqsQueryCodes[e.Code]
		if q == "" {
			q = e.Code
		}
		resp.Header.Set("X-Amzn-Query-Error", q+";"+fault)
		return resp
	case "sns":
		var b bytes.Buffer
		b.WriteString(`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>` + fault + `</Type><Code>`)
		_ = xml.EscapeText(&b, []byte(e.Code))
		b.WriteString(`</Code><Message>`)
		_ = xml.EscapeText(&b, []byte(e.Message))
		b.WriteString(`</Message></Error><RequestId>memaws</RequestId></ErrorResponse>`)
		return response(e.Status, "text/xml", b.Bytes())
	default: // s3
		if op == "HeadObject" || op == "HeadBucket" {
			return response(e.Status, "", nil)
		}
		var b bytes.Buffer
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>`)
		_ = xml.EscapeText(&b, []byte(e.Code))
		b.WriteString(`</Code><Message>`)
		_ = xml.EscapeText(&b, []byte(e.Message))
		b.WriteString(`</Message><RequestId>memaws</RequestId></Error>`)
		return response(e.Status, "application/xml", b.Bytes())
	}
}
