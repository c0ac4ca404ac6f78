package dlq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/courier-aws/courier/patterns"
)

// Method is how Redrive moves messages.
type Method string

const (
	// Auto uses MoveTask on standard queues where the backend has it, and
	// Copy on FIFO queues and where it does not (see the package doc).
	Auto Method = ""
	// MoveTask is SQS's StartMessageMoveTask, followed until it ends.
	MoveTask Method = "StartMessageMoveTask"
	// Copy is receive, send, delete, done by Redrive itself.
	Copy Method = "receive-send-delete"
)

// RedriveOptions shapes a Redrive.
type RedriveOptions struct {
	// Destination is the queue URL to move the messages to; "" sends each
	// back to the queue it came from (its DeadLetterQueueSourceArn, or the
	// dead-letter queue's only source queue).
	Destination string
	// Method: Auto (default), MoveTask or Copy.
	Method Method
	// Rate is the most messages moved per second; 0 is no limit of ours
	// (MoveTask: SQS's own pace). MoveTask takes at most 500.
	Rate int
	// Progress, when set, is called after each step with the counts so
	// far, and once more with Done set.
	Progress func(Progress)
	// PollInterval is how often a move task's status is read (default 1s).
	PollInterval time.Duration
	// Hold is Copy's visibility timeout: how long a received message is
	// hidden while it is sent (default 60s, and at least long enough for
	// ten messages at Rate).
	Hold time.Duration
}

// Progress is how far a Redrive has got.
type Progress struct {
	Method Method
	Moved  int
	// ToMove is the number of messages in the dead-letter queue when the
	// redrive started (approximate, as SQS counts).
	ToMove int
	Done   bool
}

// Result is what a Redrive did.
type Result struct {
	Method Method
	Moved  int
	ToMove int
	// TaskHandle names the move task (MoveTask).
	TaskHandle string
	// Fallback says why MoveTask was not used (Auto on a backend without it).
	Fallback string
	// NewDeduplicationIDs counts FIFO messages sent with a derived
	// deduplication id (see the package doc).
	NewDeduplicationIDs int
	// Returned counts messages that came back to the dead-letter queue
	// during the redrive after it had moved them; they were left there.
	Returned int
}

// dedupWindow is SQS's FIFO deduplication interval, with a margin for
// clocks.
const dedupWindow = 5*time.Minute + time.Minute

func redriveOptions(optFns []func(*RedriveOptions)) (RedriveOptions, error) {
	o := RedriveOptions{PollInterval: time.Second, Hold: 60 * time.Second}
	for _, fn := range optFns {
		fn(&o)
	}
	switch {
	case o.Method != Auto && o.Method != MoveTask && o.Method != Copy:
		return o, fmt.Errorf("%w: RedriveOptions.Method %q (want %q, %q or \"\")", patterns.ErrInvalidConfig, o.Method, MoveTask, Copy)
	case o.Rate < 0:
		return o, fmt.Errorf("%w: RedriveOptions.Rate %d", patterns.ErrInvalidConfig, o.Rate)
	case o.Rate > 500 && o.Method == MoveTask:
		return o, fmt.Errorf("%w: RedriveOptions.Rate %d: a move task takes at most 500 a second", patterns.ErrInvalidConfig, o.Rate)
	case o.PollInterval <= 0:
		return o, fmt.Errorf("%w: RedriveOptions.PollInterval %v", patterns.ErrInvalidConfig, o.PollInterval)
	case o.Hold < time.Second || o.Hold > 12*time.Hour:
		return o, fmt.Errorf("%w: RedriveOptions.Hold %v, want 1s to 12h", patterns.ErrInvalidConfig, o.Hold)
	}
	if o.Destination != "" {
		if _, err := patterns.ParseQueueURL(o.Destination); err != nil {
			return o, err
		}
	}
	if o.Rate > 0 {
		o.Hold = max(o.Hold, 2*10*time.Second/time.Duration(o.Rate)+10*time.Second)
	}
	return o, nil
}

// Redrive moves the messages of the dead-letter queue at dlqURL back to
// their source queue, or to RedriveOptions.Destination; see the package
// doc for how. It returns when every message that was there when it
// started has been moved, or on the first error, or when ctx ends (a move
// task it started is then cancelled): what was not moved is still in the
// dead-letter queue.
func Redrive(ctx context.Context, client API, dlqURL string, optFns ...func(*RedriveOptions)) (Result, error) {
	o, err := redriveOptions(optFns)
	if err != nil {
		return Result{}, err
	}
	attrs, err := queueAttributes(ctx, client, dlqURL, types.QueueAttributeNameQueueArn, types.QueueAttributeNameApproximateNumberOfMessages)
	if err != nil {
		return Result{}, err
	}
	r := &redrive{client: client, url: dlqURL, arn: attrs[string(types.QueueAttributeNameQueueArn)], o: o}
	r.res.ToMove, _ = strconv.Atoi(attrs[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	if o.Method == MoveTask || o.Method == Auto && !isFIFO(dlqURL) {
		err := r.moveTask(ctx)
		var unsupported *unsupportedError
		if o.Method == Auto && errors.As(err, &unsupported) {
			r.res.Fallback = unsupported.Error()
			err = r.copy(ctx)
		}
		return r.res, err
	}
	return r.res, r.copy(ctx)
}

type redrive struct {
	client   API
	url, arn string
	o        RedriveOptions
	res      Result
}

func (r *redrive) progress(done bool) {
	if r.o.Progress != nil {
		r.o.Progress(Progress{Method: r.res.Method, Moved: r.res.Moved, ToMove: r.res.ToMove, Done: done})
	}
}

// unsupportedError: the backend does not have StartMessageMoveTask.
type unsupportedError struct{ err error }

func (e *unsupportedError) Error() string {
	var he interface{ HTTPStatusCode() int }
	if errors.As(e.err, &he) {
		var ae smithy.APIError
		if errors.As(e.err, &ae) {
			return fmt.Sprintf("StartMessageMoveTask not available on this endpoint (HTTP %d, %s)", he.HTTPStatusCode(), ae.ErrorCode())
		}
		return fmt.Sprintf("StartMessageMoveTask not available on this endpoint (HTTP %d, no AWS error in the answer)", he.HTTPStatusCode())
	}
	return "StartMessageMoveTask not available on this endpoint: " + e.err.Error()
}

// unsupportedCodes are the answers of a backend that does not know an
// action.
var unsupportedCodes = map[string]bool{
	"InvalidAction": true, "UnknownOperationException": true, "NotImplemented": true, "UnsupportedOperation": true,
}

// unsupported tells an endpoint that does not have the action: it names
// the action unknown, or answers 404/501, or answers 500 with no AWS error
// in the body (moto: an HTML page). Falling back when in doubt is safe:
// Copy loses nothing either.
func unsupported(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return unsupportedCodes[ae.ErrorCode()]
	}
	var he interface{ HTTPStatusCode() int }
	if !errors.As(err, &he) {
		return false
	}
	switch he.HTTPStatusCode() {
	case 404, 500, 501:
		return true
	}
	return false
}

func (r *redrive) moveTask(ctx context.Context) error {
	r.res.Method = MoveTask
	in := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(r.arn)}
	if r.o.Destination != "" {
		dest, err := arnOf(ctx, r.client, r.o.Destination)
		if err != nil {
			return err
		}
		in.DestinationArn = aws.String(dest)
	}
	if r.o.Rate > 0 {
		in.MaxNumberOfMessagesPerSecond = aws.Int32(int32(min(r.o.Rate, 500)))
	}
	started := time.Now()
	out, err := r.client.StartMessageMoveTask(ctx, in)
	if err != nil {
		if unsupported(err) {
			return &unsupportedError{err}
		}
		return &patterns.OpError{Op: "StartMessageMoveTask", Resource: r.arn, Err: err}
	}
	r.res.TaskHandle = aws.ToString(out.TaskHandle)
	for {
		task, err := r.task(ctx, started)
		if err != nil {
			return r.cancel(ctx, err)
		}
		if task != nil {
			r.res.Moved = int(task.ApproximateNumberOfMessagesMoved)
			if task.ApproximateNumberOfMessagesToMove != nil {
				r.res.ToMove = int(*task.ApproximateNumberOfMessagesToMove)
			}
			switch aws.ToString(task.Status) {
			case "COMPLETED":
				r.progress(true)
				return nil
			case "FAILED", "CANCELLING", "CANCELLED":
				r.progress(true)
				return fmt.Errorf("%w: %s %s: %s (moved %d of %d)", ErrMoveTask, r.res.TaskHandle,
					aws.ToString(task.Status), aws.ToString(task.FailureReason), r.res.Moved, r.res.ToMove)
			}
			r.progress(false)
		}
		select {
		case <-ctx.Done():
			return r.cancel(ctx, ctx.Err())
		case <-time.After(r.o.PollInterval):
		}
	}
}

// task finds the move task this Redrive started: the one with its handle
// (listed while it runs), else the newest started since.
func (r *redrive) task(ctx context.Context, started time.Time) (*types.ListMessageMoveTasksResultEntry, error) {
	out, err := r.client.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(r.arn), MaxResults: aws.Int32(10)})
	if err != nil {
		return nil, &patterns.OpError{Op: "ListMessageMoveTasks", Resource: r.arn, Err: err}
	}
	var newest *types.ListMessageMoveTasksResultEntry
	for i := range out.Results {
		t := &out.Results[i]
		if aws.ToString(t.TaskHandle) == r.res.TaskHandle {
			return t, nil
		}
		// Started timestamps are the server's; allow for its clock.
		if time.UnixMilli(t.StartedTimestamp).After(started.Add(-time.Minute)) && (newest == nil || t.StartedTimestamp > newest.StartedTimestamp) {
			newest = t
		}
	}
	return newest, nil
}

func (r *redrive) cancel(ctx context.Context, cause error) error {
	cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	_, err := r.client.CancelMessageMoveTask(cctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: aws.String(r.res.TaskHandle)})
	if err != nil && patterns.Classify(err) != patterns.KindNotFound { // not found: it had ended
		return errors.Join(cause, &patterns.OpError{Op: "CancelMessageMoveTask", Resource: r.res.TaskHandle, Err: err})
	}
	return cause
}

// copy moves the messages by receive, send, delete.
func (r *redrive) copy(ctx context.Context) error {
	r.res.Method = Copy
	fifo := isFIFO(r.url)
	if r.o.Destination != "" && isFIFO(r.o.Destination) != fifo {
		return fmt.Errorf("%w: %s and %s are not both FIFO or both standard", patterns.ErrInvalidConfig, r.url, r.o.Destination)
	}
	dests := &destinations{r: r, byARN: map[string]string{}}
	limit := newLimiter(r.o.Rate)
	moved := map[string]bool{}
	defer r.progress(true)
	for {
		got, err := receive(ctx, r.client, r.url, 10, r.o.Hold, time.Second)
		if err != nil {
			return err
		}
		var fresh, back []Message
		for _, m := range got {
			if moved[m.ID] {
				back = append(back, m)
			} else {
				fresh = append(fresh, m)
			}
		}
		if len(back) > 0 {
			// Moved once already and failed again at its source (or sent
			// twice by a standard queue): left for the next redrive.
			r.res.Returned += len(back)
			if err := release(ctx, r.client, r.url, back); err != nil {
				return err
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		var sent []Message
		if fifo {
			sent, err = r.sendFIFO(ctx, fresh, dests, limit)
		} else {
			sent, err = r.sendStandard(ctx, fresh, dests, limit)
		}
		for _, m := range sent {
			moved[m.ID] = true
		}
		derr := r.deleteSent(ctx, sent)
		r.res.Moved += len(sent) - countErrs(derr)
		r.progress(false)
		if err != nil || derr != nil {
			// Give back what was not sent, so the next redrive finds it at once.
			unsent := without(fresh, sent)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			rerr := release(rctx, r.client, r.url, unsent)
			cancel()
			return errors.Join(err, derr, rerr)
		}
	}
}

// sendFIFO sends one group at a time, in order, one message per request:
// it stops at the first failure, so no message of a group is sent after
// one that was not.
func (r *redrive) sendFIFO(ctx context.Context, msgs []Message, dests *destinations, limit *limiter) ([]Message, error) {
	var groups []string
	byGroup := map[string][]Message{}
	for _, m := range msgs {
		if _, ok := byGroup[m.GroupID]; !ok {
			groups = append(groups, m.GroupID)
		}
		byGroup[m.GroupID] = append(byGroup[m.GroupID], m)
	}
	var sent []Message
	for _, g := range groups {
		for _, m := range byGroup[g] {
			dest, err := dests.of(ctx, m)
			if err != nil {
				return sent, err
			}
			if err := limit.wait(ctx, 1); err != nil {
				return sent, err
			}
			dedup, derived := dedupID(m, time.Now())
			in := &sqs.SendMessageInput{
				QueueUrl: aws.String(dest), MessageBody: aws.String(m.Body), MessageAttributes: m.Attributes,
				MessageGroupId: aws.String(m.GroupID), MessageDeduplicationId: aws.String(dedup),
				MessageSystemAttributes: systemAttrs(m),
			}
			out, err := r.client.SendMessage(ctx, in)
			if err == nil && !derived && aws.ToString(out.MessageId) == m.ID {
				// SQS answered with the message's own id: it took the
				// send for a duplicate of the original and dropped it.
				dedup, derived = derivedDedupID(m), true
				in.MessageDeduplicationId = aws.String(dedup)
				_, err = r.client.SendMessage(ctx, in)
			}
			if err != nil {
				return sent, &patterns.OpError{Op: "SendMessage", Resource: dest, Err: err}
			}
			if derived {
				r.res.NewDeduplicationIDs++
			}
			sent = append(sent, m)
		}
	}
	return sent, nil
}

// sendStandard sends in batches of up to ten per destination.
func (r *redrive) sendStandard(ctx context.Context, msgs []Message, dests *destinations, limit *limiter) ([]Message, error) {
	var order []string
	byDest := map[string][]Message{}
	for _, m := range msgs {
		dest, err := dests.of(ctx, m)
		if err != nil {
			return nil, err
		}
		if _, ok := byDest[dest]; !ok {
			order = append(order, dest)
		}
		byDest[dest] = append(byDest[dest], m)
	}
	var sent []Message
	var errs []error
	for _, dest := range order {
		batch := byDest[dest]
		if err := limit.wait(ctx, len(batch)); err != nil {
			return sent, err
		}
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, m := range batch {
			entries[i] = types.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(m.Body), MessageAttributes: m.Attributes,
				MessageSystemAttributes: systemAttrs(m),
			}
			if m.GroupID != "" { // a fair queue's tenant
				entries[i].MessageGroupId = aws.String(m.GroupID)
			}
		}
		out, err := r.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(dest), Entries: entries})
		if err != nil {
			return sent, &patterns.OpError{Op: "SendMessageBatch", Resource: dest, Err: err}
		}
		for _, s := range out.Successful {
			if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= 0 && i < len(batch) {
				sent = append(sent, batch[i])
			}
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("courier: SendMessageBatch %s: entry %s: %s: %s", dest, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return sent, errors.Join(errs...)
}

func systemAttrs(m Message) map[string]types.MessageSystemAttributeValue {
	if h := m.System["AWSTraceHeader"]; h != "" {
		return map[string]types.MessageSystemAttributeValue{"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String(h)}}
	}
	return nil
}

// dedupID is the deduplication id to redrive m with: its own, when SQS
// cannot hold it against the message's first send. That is so when the
// dead-letter queue gave it the message's id as its deduplication id (AWS
// does so for FIFO dead-letter queues), or when the first send is older
// than the deduplication window; otherwise (memaws and LocalStack keep the
// first send's id in the dead-letter queue) it gets a derived one.
func dedupID(m Message, now time.Time) (string, bool) {
	if m.DeduplicationID != "" && (m.DeduplicationID == m.ID || !m.SentAt.IsZero() && now.Sub(m.SentAt) > dedupWindow) {
		return m.DeduplicationID, false
	}
	return derivedDedupID(m), true
}

func derivedDedupID(m Message) string {
	sum := sha256.Sum256([]byte(m.DeduplicationID + "\x00" + m.ID))
	return "redrive-" + hex.EncodeToString(sum[:20])
}

// deleteSent deletes what was sent; a failure is an ErrNotDeleted per message.
func (r *redrive) deleteSent(ctx context.Context, sent []Message) error {
	// A send that was accepted must be followed by its delete, even when
	// ctx ended meanwhile.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for start := 0; start < len(sent); start += 10 {
		chunk := sent[start:min(start+10, len(sent))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.receipt)}
		}
		out, err := r.client.DeleteMessageBatch(dctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.url), Entries: entries})
		if err != nil {
			for _, m := range chunk {
				errs = append(errs, fmt.Errorf("%w: %s: %v", ErrNotDeleted, m.ID, err))
			}
			continue
		}
		for _, f := range out.Failed {
			id := aws.ToString(f.Id)
			if i, err := strconv.Atoi(id); err == nil && i >= 0 && i < len(chunk) {
				id = chunk[i].ID
			}
			errs = append(errs, fmt.Errorf("%w: %s: %s: %s", ErrNotDeleted, id, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

func countErrs(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

func without(all, sent []Message) []Message {
	done := map[string]bool{}
	for _, m := range sent {
		done[m.ID] = true
	}
	var rest []Message
	for _, m := range all {
		if !done[m.ID] {
			rest = append(rest, m)
		}
	}
	return rest
}

// destinations tells where each dead letter goes.
type destinations struct {
	r       *redrive
	byARN   map[string]string
	sources []string
	listed  bool
}

func (d *destinations) of(ctx context.Context, m Message) (string, error) {
	if d.r.o.Destination != "" {
		return d.r.o.Destination, nil
	}
	if arn := m.SourceARN; arn != "" {
		if u, ok := d.byARN[arn]; ok {
			return u, nil
		}
		u, err := urlOf(ctx, d.r.client, arn)
		if err != nil {
			return "", err
		}
		d.byARN[arn] = u
		return u, nil
	}
	if !d.listed {
		s, err := Sources(ctx, d.r.client, d.r.url)
		if err != nil {
			return "", err
		}
		d.sources, d.listed = s, true
	}
	if len(d.sources) != 1 {
		return "", fmt.Errorf("%w: message %s has no DeadLetterQueueSourceArn and %s has %d source queues (%s); name a destination",
			ErrNoDestination, m.ID, d.r.url, len(d.sources), strings.Join(d.sources, ", "))
	}
	return d.sources[0], nil
}

// limiter spaces sends to at most rate messages a second.
type limiter struct {
	every time.Duration
	next  time.Time
}

func newLimiter(rate int) *limiter {
	if rate <= 0 {
		return &limiter{}
	}
	return &limiter{every: time.Second / time.Duration(rate)}
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l.every == 0 {
		return ctx.Err()
	}
	now := time.Now()
	at := now
	if l.next.After(now) {
		at = l.next
	}
	l.next = at.Add(time.Duration(n) * l.every)
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}
