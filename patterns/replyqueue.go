package patterns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The reply queue of a Requester: created when the Requester starts,
// tagged, kept alive by a heartbeat tag, deleted on Close. A process that
// dies without Close (a crash, a retired Lambda execution environment)
// leaves its queue behind; Sweep finds such queues by their tags and
// deletes those whose heartbeat stopped.

// DefaultReplyQueuePrefix starts the name of every reply queue a Requester
// creates, unless RequesterOptions.ReplyQueuePrefix says otherwise.
const DefaultReplyQueuePrefix = "courier-reply-"

// Tags on the reply queues a Requester creates.
const (
	// TagReplyQueue marks a queue as a courier reply queue ("true"): Sweep
	// deletes nothing without it.
	TagReplyQueue = "courier:reply-queue"
	// TagOwner names the process that owns the queue (host/pid/random).
	TagOwner = "courier:owner"
	// TagHeartbeat is the Unix time, in seconds, at which the owner last
	// said it was alive.
	TagHeartbeat = "courier:heartbeat"
)

// Reply queue settings. Dispatching a reply takes microseconds, so a short
// visibility timeout only speeds up the redelivery of a reply whose receive
// failed on the way back; a short retention bounds what an owner that is
// gone (or a frozen Lambda environment, whose waiting invocation has ended)
// leaves behind: such replies are late anyway.
const (
	replyQueueVisibility = 5 * time.Second
	replyQueueRetention  = 5 * time.Minute
	replyQueueWait       = 20 * time.Second
	replyNameRandomHex   = 16 // 64 random bits in each queue name
)

// replyQueue is the lifecycle of one Requester's reply queue.
type replyQueue struct {
	client   SQSQueueAPI
	given    bool // provisioned by infra: not created, tagged or deleted here
	prefix   string
	attrs    map[string]string
	tags     map[string]string
	interval time.Duration
	log      *slog.Logger
	// onReplace is told when a lost queue was replaced.
	onReplace func(old, new string)

	// beatMu serialises heartbeats and replacements, so that many requests
	// that find the heartbeat stale at once (a thawed Lambda environment)
	// make one TagQueue, and a lost queue is replaced once.
	beatMu sync.Mutex

	mu       sync.Mutex
	url      string
	closed   bool // deleted by Close: never replaced again
	lastBeat time.Time
	created  int64 // queues created so far
	beats    int64
}

// open creates the queue, or checks that the given one exists.
func (q *replyQueue) open(ctx context.Context) error {
	if q.given {
		_, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(q.url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
		})
		return opError("GetQueueAttributes", q.url, err)
	}
	url, err := q.create(ctx)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.url = url
	q.mu.Unlock()
	return nil
}

// current returns the queue replies go to now.
func (q *replyQueue) current() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.url
}

// create makes a new, uniquely named queue. A new name each time: SQS
// refuses to create a queue under a name deleted less than 60 s ago.
func (q *replyQueue) create(ctx context.Context) (string, error) {
	name := q.prefix + randomHex(replyNameRandomHex/2)
	attrs := map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(int(replyQueueVisibility / time.Second)),
		string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(replyQueueRetention / time.Second)),
	}
	for k, v := range q.attrs {
		attrs[k] = v
	}
	now := time.Now()
	tags := map[string]string{TagHeartbeat: strconv.FormatInt(now.Unix(), 10)}
	for k, v := range q.tags {
		tags[k] = v
	}
	out, err := q.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs, Tags: tags})
	if err != nil {
		return "", opError("CreateQueue", name, err)
	}
	url := aws.ToString(out.QueueUrl)
	q.mu.Lock()
	q.lastBeat = now
	q.created++
	q.mu.Unlock()
	q.log.Debug("courier: reply queue created", "queue", url)
	return url, nil
}

// heartbeat refreshes the heartbeat tag when it is older than minAge, and
// replaces the queue when it is gone. Requests call it with a minAge above
// the interval: a heartbeat that overdue means the process was frozen
// (Lambda between invocations) or cut off, and the queue may have been
// swept meanwhile. Callers that come together share one TagQueue. It
// returns the queue replies go to now; a failed refresh of a queue that
// still exists is only logged.
func (q *replyQueue) heartbeat(ctx context.Context, minAge time.Duration) (string, error) {
	if q.given {
		return q.current(), nil
	}
	q.beatMu.Lock()
	defer q.beatMu.Unlock()
	q.mu.Lock()
	url, fresh := q.url, time.Since(q.lastBeat) < minAge
	q.mu.Unlock()
	if fresh {
		return url, nil
	}
	now := time.Now()
	_, err := q.client.TagQueue(ctx, &sqs.TagQueueInput{
		QueueUrl: aws.String(url),
		Tags:     map[string]string{TagHeartbeat: strconv.FormatInt(now.Unix(), 10)},
	})
	if err = opError("TagQueue", url, err); err == nil {
		q.mu.Lock()
		q.lastBeat = now
		q.beats++
		q.mu.Unlock()
		return url, nil
	}
	if !errors.Is(err, ErrNotFound) {
		if ctx.Err() == nil {
			q.log.Warn("courier: reply queue heartbeat failed", "queue", url, "err", err)
		}
		return url, nil
	}
	return q.replaceLocked(ctx, url)
}

// replace makes a new queue when old, the current one, is gone (a sweeper
// deleted it while this process was frozen, or someone else did). It
// returns the queue replies go to now.
func (q *replyQueue) replace(ctx context.Context, old string) (string, error) {
	q.beatMu.Lock()
	defer q.beatMu.Unlock()
	return q.replaceLocked(ctx, old)
}

func (q *replyQueue) replaceLocked(ctx context.Context, old string) (string, error) {
	q.mu.Lock()
	cur, closed := q.url, q.closed
	q.mu.Unlock()
	switch {
	case closed:
		return old, ErrRequesterClosed
	case cur != old:
		return cur, nil // replaced already
	}
	if q.given {
		return old, fmt.Errorf("%w: reply queue %s (given, so not re-created)", ErrNotFound, old)
	}
	url, err := q.create(ctx)
	if err != nil {
		return old, err
	}
	q.log.Warn("courier: reply queue was gone (swept while this process was frozen or idle?); replaced",
		"old", old, "queue", url)
	q.mu.Lock()
	q.url = url
	q.mu.Unlock()
	if q.onReplace != nil {
		q.onReplace(old, url)
	}
	return url, nil
}

// delete removes a created queue; a given one is left alone. It holds
// beatMu so that a request's late heartbeat cannot replace the queue after
// Close deleted it.
func (q *replyQueue) delete(ctx context.Context) error {
	if q.given {
		return nil
	}
	q.beatMu.Lock()
	defer q.beatMu.Unlock()
	q.mu.Lock()
	url := q.url
	q.closed = true
	q.mu.Unlock()
	if url == "" {
		return nil
	}
	_, err := q.client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	if err = opError("DeleteQueue", url, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Sweep deletes the reply queues whose owner is gone: queues whose name
// starts with prefix (DefaultReplyQueuePrefix when ""), that carry
// TagReplyQueue, and whose TagHeartbeat is older than idle. Everything
// else is left alone: queues without the tag (whatever their name), and
// tagged queues with a fresh or unreadable heartbeat. It returns the URLs
// of the queues it deleted; errors on single queues do not stop it and are
// returned together at the end.
//
// Run it on a schedule (a timer in a service, or a scheduled Lambda
// function), with idle well above the Requesters' HeartbeatInterval (ten
// times is comfortable). A Lambda execution environment cannot beat while
// it is frozen between invocations, so its queue may be swept although the
// environment lives on; its Requester then notices and creates a new queue
// before the next request (see Requester).
//
// Sweep needs sqs:ListQueues, sqs:ListQueueTags and sqs:DeleteQueue.
// ListQueues is eventually consistent: a queue created moments ago may be
// missed, which costs nothing (it is fresh).
func Sweep(ctx context.Context, client SQSQueueAPI, prefix string, idle time.Duration) ([]string, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil SQS client", ErrInvalidConfig)
	}
	if idle <= 0 {
		return nil, fmt.Errorf("%w: Sweep idle %v must be positive", ErrInvalidConfig, idle)
	}
	if prefix == "" {
		prefix = DefaultReplyQueuePrefix
	}
	cutoff := time.Now().Add(-idle)
	var (
		deleted []string
		errs    []error
	)
	in := &sqs.ListQueuesInput{QueueNamePrefix: aws.String(prefix), MaxResults: aws.Int32(1000)}
	for {
		out, err := client.ListQueues(ctx, in)
		if err != nil {
			errs = append(errs, opError("ListQueues", prefix, err))
			break
		}
		for _, url := range out.QueueUrls {
			gone, err := sweepOne(ctx, client, url, cutoff)
			if err != nil {
				errs = append(errs, err)
			}
			if gone {
				deleted = append(deleted, url)
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return deleted, errors.Join(errs...)
}

// sweepOne deletes url when its tags say it is an idle reply queue.
func sweepOne(ctx context.Context, client SQSQueueAPI, url string, cutoff time.Time) (bool, error) {
	out, err := client.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
	if err = opError("ListQueueTags", url, err); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil // deleted meanwhile
		}
		return false, err
	}
	if !idleReplyQueue(out.Tags, cutoff) {
		return false, nil
	}
	_, err = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	if err = opError("DeleteQueue", url, err); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// idleReplyQueue decides from a queue's tags whether Sweep may delete it.
func idleReplyQueue(tags map[string]string, cutoff time.Time) bool {
	if tags[TagReplyQueue] != "true" {
		return false
	}
	secs, err := strconv.ParseInt(tags[TagHeartbeat], 10, 64)
	if err != nil {
		return false // not ours to judge
	}
	return time.Unix(secs, 0).Before(cutoff)
}

// defaultOwner names this process: host/pid/random, in the characters SQS
// allows in a tag value.
func defaultOwner() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, host)
	if len(host) > 200 {
		host = host[:200]
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomHex(4))
}

// randomHex returns n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b)
}
