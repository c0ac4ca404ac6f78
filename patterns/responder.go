package patterns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// ResponderOptions configures a Responder (NewResponder): the Consumer of
// its request queue, and the allowlist of return addresses.
//
// A return address must be a plain queue URL (no user info, query,
// fragment, escapes or dot segments) and pass three checks, all of them:
//
//   - Where: its scheme and host are those of the request queue's URL,
//     of an SQS endpoint of the responder's Region (https only: the
//     regional, FIPS, dual-stack and legacy REGION.queue hosts of the
//     region's partition, as the SDK's endpoint resolver names them), or
//     of Endpoint (an emulator such as LocalStack or moto, a VPC
//     endpoint). On an AWS host the path is /ACCOUNT/NAME; elsewhere
//     LocalStack's /queue/REGION/ACCOUNT/NAME is accepted too, for the
//     responder's region. A request cannot make the responder send to
//     another region, partition or host.
//   - Account: one of AllowAccounts; unset, the account an AllowReplyTo
//     prefix names, or what AllowReplyFunc accepts; with none of these,
//     the request queue's own account.
//   - Name: matches one of AllowNames (path.Match patterns, e.g.
//     "courier-reply-*"); unset, the name an AllowReplyTo prefix starts,
//     or what AllowReplyFunc accepts; with none of these,
//     DefaultReplyQueuePrefix+"*".
//
// Every rule that is set must hold (one match within a rule is enough):
// AllowReplyTo, URL prefixes such as
// "https://sqs.eu-west-1.amazonaws.com/123456789012/courier-reply-", each
// naming an account (the prefix pins the host, the account and the start
// of the name); AllowAccounts; AllowNames; AllowReplyFunc.
//
// So with no rule set, a Responder answers courier-reply-* queues in its
// request queue's account, on its own region's SQS endpoint. AllowNames
// alone keeps the own-account default; AllowAccounts alone keeps the name
// default.
//
// The Responder learns its region and endpoint from the client when it
// is an *sqs.Client (Options().Region and Options().BaseEndpoint, which
// config.LoadDefaultConfig fills from AWS_REGION and AWS_ENDPOINT_URL);
// set Region and Endpoint for any other SQSAPI. With neither known, only
// the request queue's host is allowed.
type ResponderOptions struct {
	ConsumerOptions
	// Name is how the responder names itself in replies to scatter
	// requests (ResponderHeader), so that a scatter-gather aggregate says
	// who answered and who did not. Default: the request queue URL, which
	// is what a scatterer sending to that queue expects.
	Name           string
	AllowReplyTo   []string
	AllowAccounts  []string
	AllowNames     []string
	AllowReplyFunc func(QueueRef) bool
	// Region is the AWS region whose SQS endpoints return addresses may
	// name, e.g. "eu-west-1" (its partition follows: cn-north-1's hosts
	// end amazonaws.com.cn). Default: the client's Options().Region.
	Region string
	// Endpoint is an SQS endpoint URL (scheme and host, e.g.
	// "http://127.0.0.1:4566" for LocalStack) whose host return addresses
	// may name. Default: the client's Options().BaseEndpoint.
	Endpoint string
}

// Validate reports options that cannot work. NewResponder calls it.
func (c ResponderOptions) Validate() error {
	if err := c.ConsumerOptions.Validate(); err != nil {
		return err
	}
	for _, p := range c.AllowReplyTo {
		if _, err := parseReplyPrefix(p); err != nil {
			return err
		}
	}
	if c.Region != "" && !validRegion(c.Region) {
		return fmt.Errorf("%w: Region %q is not a region name", ErrInvalidConfig, c.Region)
	}
	if c.Endpoint != "" {
		if _, err := endpointOrigin(c.Endpoint); err != nil {
			return err
		}
	}
	for _, a := range c.AllowAccounts {
		if !isDigits(a) {
			return fmt.Errorf("%w: AllowAccounts %q is not an account id", ErrInvalidConfig, a)
		}
	}
	for _, p := range c.AllowNames {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%w: AllowNames pattern %q: %v", ErrInvalidConfig, p, err)
		}
	}
	return nil
}

// RequestHandler answers one request: it returns the reply (body,
// attributes, headers; the Responder sets the correlation id), or an error
// that the requester receives as a *RemoteError.
type RequestHandler func(ctx context.Context, req *Message) (*Message, error)

// ResponderStats counts what a Responder did.
type ResponderStats struct {
	Requests     int64 // requests handed to the handler
	Replies      int64 // replies sent, error replies included
	ErrorReplies int64 // handler errors (and panics, and unsendable replies) sent as error replies
	// Rejected are requests refused: their return address was missing,
	// malformed or not allowed (each is logged and left on the queue,
	// for its redrive policy to move to the dead-letter queue; counted at
	// each receive), or it was allowed but the request had no correlation
	// id (answered with an error reply there, and deleted).
	Rejected int64
	// Undeliverable are replies whose reply queue no longer exists (its
	// requester closed or died); the request is deleted.
	Undeliverable int64
	Consumer      ConsumerStats
}

// Responder consumes requests, runs a RequestHandler on each and sends the
// reply to the request's return address with the request's correlation id.
//
// A request whose return address is missing or not allowed is not
// answered: it is logged (with ErrUnknownReturnAddress), counted in
// Stats().Rejected and not deleted, so that it fails like any message
// whose handler failed and the request queue's redrive policy moves it to
// the dead-letter queue, where an operator sees it (give request queues
// one). A request whose address is allowed but that has no correlation id
// is answered with an error reply saying so.
//
// A request of the AWS Java temporary-queues client's AmazonSQSRequester
// (a ResponseQueueUrl attribute, no courier return address) is answered as
// its AmazonSQSResponder does: the reply goes to that queue, or to the
// host queue of a virtual one, within the same allowlist (its queues are
// named __RequesterClientQueues__... by default: allow them with
// AllowNames). See docs/wire.md.
//
// A handler error (or panic) becomes an error reply. A reply that cannot be
// sent for a transient reason leaves the request on the queue: SQS delivers
// it again, the handler runs again (handlers should be idempotent) and the
// requester takes whichever reply comes first.
type Responder struct {
	client   SQSAPI
	cfg      ResponderOptions
	consumer *Consumer
	log      *slog.Logger
	allow    []func(QueueRef) error
	stats    struct{ requests, replies, errorReplies, rejected, undeliverable atomic.Int64 }
}

// NewResponder returns a Responder of the request queue at queueURL; optFns
// set its ResponderOptions; the configuration is
// checked here.
func NewResponder(client SQSAPI, queueURL string, optFns ...func(*ResponderOptions)) (*Responder, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	var cfg ResponderOptions
	for _, fn := range optFns {
		fn(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := newConsumer(client, consumerConfig{QueueURL: queueURL, ConsumerOptions: cfg.ConsumerOptions})
	if err != nil {
		return nil, err
	}
	s := &Responder{client: client, cfg: cfg, consumer: c, log: c.cfg.Logger}
	if s.allow, err = s.rules(client); err != nil {
		return nil, err
	}
	return s, nil
}

// rules builds the allowlist (see ResponderOptions): where, account and
// name always, and each rule that is set.
func (s *Responder) rules(client SQSAPI) ([]func(QueueRef) error, error) {
	c := s.cfg
	if o, ok := client.(interface{ Options() sqs.Options }); ok {
		opts := o.Options()
		if c.Region == "" && validRegion(opts.Region) {
			c.Region = opts.Region
		}
		if c.Endpoint == "" && opts.BaseEndpoint != nil {
			c.Endpoint = *opts.BaseEndpoint
		}
	}
	where, err := newReplyHosts(s.consumer.queue, c.Region, c.Endpoint)
	if err != nil {
		return nil, err
	}
	rules := []func(QueueRef) error{where.check}

	var prefixes []replyPrefix
	for _, p := range c.AllowReplyTo {
		rp, err := parseReplyPrefix(p)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, rp)
	}
	if len(prefixes) > 0 {
		rules = append(rules, func(q QueueRef) error {
			for _, p := range prefixes {
				if p.match(q) {
					return nil
				}
			}
			return fmt.Errorf("not under any of AllowReplyTo %q", c.AllowReplyTo)
		})
	}
	delegated := len(prefixes) > 0 || c.AllowReplyFunc != nil
	accounts := c.AllowAccounts
	if len(accounts) == 0 && !delegated {
		accounts = []string{s.consumer.queue.Account}
	}
	if len(accounts) > 0 {
		rules = append(rules, func(q QueueRef) error {
			if slices.Contains(accounts, q.Account) {
				return nil
			}
			return fmt.Errorf("account %s is not one of %q", q.Account, accounts)
		})
	}
	names := c.AllowNames
	if len(names) == 0 && !delegated {
		names = []string{DefaultReplyQueuePrefix + "*"}
	}
	if len(names) > 0 {
		rules = append(rules, func(q QueueRef) error {
			for _, p := range names {
				if ok, _ := path.Match(p, q.Name); ok {
					return nil
				}
			}
			return fmt.Errorf("name %s matches none of %q", q.Name, names)
		})
	}
	if c.AllowReplyFunc != nil {
		rules = append(rules, func(q QueueRef) error {
			if c.AllowReplyFunc(q) {
				return nil
			}
			return errors.New("refused by AllowReplyFunc")
		})
	}
	return rules, nil
}

// Stats returns a snapshot of the counters.
func (s *Responder) Stats() ResponderStats {
	return ResponderStats{
		Requests: s.stats.requests.Load(), Replies: s.stats.replies.Load(), ErrorReplies: s.stats.errorReplies.Load(),
		Rejected: s.stats.rejected.Load(), Undeliverable: s.stats.undeliverable.Load(), Consumer: s.consumer.Stats(),
	}
}

// Run consumes requests and answers them with h until ctx ends, then shuts
// down as Consumer.Run does; replies of handlers still running are sent
// before it returns. Replies that are ready at the same time share
// SendMessageBatch requests.
func (s *Responder) Run(ctx context.Context, h RequestHandler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	o := newOutbox(s.client)
	// The sender outlives ctx until the consumer has shut down, so that the
	// handlers that finish during shutdown can still reply.
	octx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); o.run(octx) }()
	err := s.consumer.Run(ctx, s.handler(h, tracedSend(s.consumer.cfg.Tracer, meteredSend(s.consumer.cfg.Metrics, o.send))))
	stop()
	<-done
	return err
}

// Handler returns h as a plain Handler that sends each reply at once, with
// no background work: for a Lambda function whose event source is the
// request queue (the Lambda adapter runs the Handler), or any loop of your
// own. Run uses the same logic.
func (s *Responder) Handler(h RequestHandler) Handler {
	return s.handler(h, tracedSend(s.consumer.cfg.Tracer, meteredSend(s.consumer.cfg.Metrics, func(ctx context.Context, dest string, m *Message) error {
		p, err := NewProducer(s.client, dest)
		if err != nil {
			return err
		}
		return p.Send(ctx, m)
	})))
}

type sendFunc func(ctx context.Context, dest string, m *Message) error

// tracedSend wraps send in the tracer's send span, one per message: the
// outbox batches messages of many callers, each in a trace of its own.
func tracedSend(t Tracer, send sendFunc) sendFunc {
	if t == nil {
		return send
	}
	return func(ctx context.Context, dest string, m *Message) (err error) {
		ctx, end := t.StartSend(ctx, dest, []*Message{m})
		defer func() { end(err) }()
		return send(ctx, dest, m)
	}
}

func (s *Responder) handler(h RequestHandler, send sendFunc) Handler {
	return func(ctx context.Context, req *Message) error {
		addr, virtual, java := returnAddress(req)
		dest, err := s.CheckReturnAddress(addr)
		if err == nil && java && virtual != "" && !validQueueName(virtual) {
			err = fmt.Errorf("%w: malformed: virtual queue name %q in %s", ErrUnknownReturnAddress, virtual, responseQueueURLAttribute)
		}
		if err != nil {
			// Not answered, and not deleted either: it fails, comes back
			// and ends in the dead-letter queue, where an operator sees it.
			s.stats.rejected.Add(1)
			s.log.Warn("courier: request rejected, not answered; left to the dead-letter queue", "queue", req.QueueURL, "message_id", req.ID,
				"return_address", addr, "correlation_id", req.CorrelationID, "receive_count", req.ReceiveCount, "err", err)
			return fmt.Errorf("courier: request %s rejected: %w", req.ID, err)
		}
		var reply *Message
		failed := true
		if req.CorrelationID == "" && !java {
			// The address is allowed: say why, there.
			s.stats.rejected.Add(1)
			reply = errorReply(fmt.Sprintf("%v: the request has no correlation id", ErrMalformedMessage))
		} else {
			s.stats.requests.Add(1)
			reply, failed = s.call(ctx, h, req)
		}
		address := func(r *Message) *Message {
			out := s.replyTo(req, r, dest)
			if virtual != "" {
				// What the temporary-queues client's virtual queues add
				// when they send to HOST#NAME: the host queue gets it.
				out.Attributes = maps.Clone(out.Attributes)
				if out.Attributes == nil {
					out.Attributes = map[string]Attribute{}
				}
				out.Attributes[virtualQueueNameAttribute] = StringAttr(virtual)
			}
			return out
		}
		reply = address(reply)
		if err := reply.validate(MaxSQSMessageBytes); err != nil {
			reply, failed = address(errorReply("the handler's reply cannot be sent: "+err.Error())), true
		}
		err = send(ctx, dest.URL, reply)
		if unsendable(err) && !failed {
			// Refused for what the reply is: it would be refused again on
			// every redelivery. Tell the requester instead.
			reply, failed = address(errorReply("the handler's reply cannot be sent: "+err.Error())), true
			err = send(ctx, dest.URL, reply)
		}
		switch {
		case err == nil:
			s.stats.replies.Add(1)
			if failed {
				s.stats.errorReplies.Add(1)
			}
			return nil
		case errors.Is(err, ErrNotFound):
			s.stats.undeliverable.Add(1)
			s.log.Warn("courier: reply queue gone; request deleted", "queue", req.QueueURL, "message_id", req.ID,
				"return_address", dest.URL, "correlation_id", req.CorrelationID, "err", err)
			return nil
		default:
			return fmt.Errorf("courier: reply to %s: %w", dest.URL, err)
		}
	}
}

// The attributes of the AWS Java temporary-queues client
// (amazon-sqs-java-temporary-queues-client): its AmazonSQSRequester names
// the response queue in responseQueueURLAttribute, a queue URL or, for a
// virtual queue, HOST_QUEUE_URL#NAME; a message for a virtual queue goes
// to the host queue with virtualQueueNameAttribute set to NAME.
const (
	responseQueueURLAttribute = "ResponseQueueUrl"
	virtualQueueNameAttribute = "__AmazonSQSVirtualQueuesClient.QueueName"
)

// returnAddress returns where req's reply goes: courier's return address,
// else the temporary-queues client's response queue (java), split into
// the queue URL and, for a virtual queue, its name.
func returnAddress(req *Message) (addr, virtual string, java bool) {
	if req.ReturnAddress != "" {
		return req.ReturnAddress, "", false
	}
	a, ok := req.Attributes[responseQueueURLAttribute]
	if !ok || !strings.HasPrefix(a.DataType, TypeString) || a.Value == "" {
		return "", "", false
	}
	addr, virtual, _ = strings.Cut(a.Value, "#")
	return addr, virtual, true
}

// unsendable tells whether SQS (or the check before sending) refused a
// message for what it is, rather than for a passing reason.
func unsendable(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{ErrInvalidMessage, ErrMessageTooLarge, ErrTooManyAttributes, ErrInvalidGroupID} {
		if errors.Is(err, target) {
			return true
		}
	}
	var se *SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			if !f.SenderFault || ClassifyCode(f.Code) == KindNotFound {
				return false
			}
		}
		return len(se.Failed) > 0
	}
	return false
}

// call runs h and turns an error, a panic or a missing reply into an error
// reply: the requester is waiting, and a panic would fail the same way on
// every delivery.
func (s *Responder) call(ctx context.Context, h RequestHandler, req *Message) (reply *Message, failed bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("courier: request handler panicked; answering with an error", "queue", req.QueueURL,
				"message_id", req.ID, "correlation_id", req.CorrelationID, "panic", p)
			reply, failed = errorReply(fmt.Sprintf("handler panicked: %v", p)), true
		}
	}()
	rep, err := h(ctx, req)
	switch {
	case err != nil:
		return errorReply(err.Error()), true
	case rep == nil:
		return errorReply("the handler returned no reply"), true
	}
	_, isErr := rep.Headers[ErrorHeader]
	return rep, isErr
}

// replyTo addresses reply to dest as the answer to req and, when req is
// a scatter request, names the responder in it.
func (s *Responder) replyTo(req, reply *Message, dest QueueRef) *Message {
	out := replyTo(req, reply, dest)
	if req.Header(ScatterHeader) != "" {
		name := s.cfg.Name
		if name == "" {
			name = s.consumer.queue.URL
		}
		out.Headers = maps.Clone(out.Headers)
		out.SetHeader(ResponderHeader, name)
		out.SetHeader(ResponderQueueHeader, s.consumer.queue.URL)
	}
	return out
}

// replyTo addresses a copy of reply to dest as the answer to req.
func replyTo(req, reply *Message, dest QueueRef) *Message {
	out := *reply
	out.CorrelationID, out.ReturnAddress = req.CorrelationID, ""
	out.ID, out.SequenceNumber, out.ReceiptHandle, out.QueueURL, out.TopicARN = "", "", "", "", ""
	if out.TraceParent == "" {
		out.TraceParent = req.TraceParent
	}
	if dest.FIFO() {
		// A FIFO reply queue (one infra provisioned): each reply its own
		// group, and a redelivered request's second reply deduplicated.
		if out.GroupID == "" {
			out.GroupID = req.CorrelationID
		}
		if out.DeduplicationID == "" {
			out.DeduplicationID = req.CorrelationID
		}
		out.Delay = 0
	}
	return &out
}

// errorReply makes an error reply: the text in ErrorHeader and, since SQS
// wants a body, in the body too. The text is cut to 4 KiB and made of
// characters SQS accepts.
func errorReply(text string) *Message {
	text = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (unicode.IsPrint(r) && r != unicode.ReplacementChar) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(text, "?"))
	if len(text) > 4096 {
		text = strings.ToValidUTF8(text[:4096], "")
	}
	if text == "" {
		text = "error"
	}
	m := &Message{Body: []byte(text)}
	m.SetHeader(ErrorHeader, text)
	return m
}
