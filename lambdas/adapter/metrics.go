package adapter

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/courier-aws/courier/patterns"
)

// sourceCount is how many records of an event came from one source (an
// event source mapping has one queue; an SNS event, one topic).
type sourceCount struct {
	source string // queue URL or topic ARN
	arn    string // SQS: the event source ARN
	n      int
}

// sqsSources counts an SQS event's records by queue, in order of first
// appearance.
func sqsSources(records []events.SQSMessage) []sourceCount {
	var out []sourceCount
	for _, r := range records {
		found := false
		for k := range out {
			if out[k].arn == r.EventSourceARN {
				out[k].n++
				found = true
				break
			}
		}
		if !found {
			out = append(out, sourceCount{source: QueueURL(r.EventSourceARN), arn: r.EventSourceARN, n: 1})
		}
	}
	return out
}

// snsSources counts an SNS event's records by topic.
func snsSources(records []events.SNSEventRecord) []sourceCount {
	var out []sourceCount
	for _, r := range records {
		found := false
		for k := range out {
			if out[k].source == r.SNS.TopicArn {
				out[k].n++
				found = true
				break
			}
		}
		if !found {
			out = append(out, sourceCount{source: r.SNS.TopicArn, n: 1})
		}
	}
	return out
}

// delivered records an event's records as delivered and in flight.
func delivered(ctx context.Context, m patterns.Metrics, sources []sourceCount) {
	for _, s := range sources {
		m.Delivered(ctx, s.source, s.n)
		m.InFlight(ctx, s.source, s.n)
	}
}

// done takes an event's records out of flight.
func done(ctx context.Context, m patterns.Metrics, sources []sourceCount) {
	for _, s := range sources {
		m.InFlight(ctx, s.source, -s.n)
	}
}

// acknowledged records, as the invocation returns, the records that the
// event source mapping deletes (those not reported failed) and takes the
// event's records out of flight.
func (b *batch) acknowledged(ctx context.Context, sources []sourceCount) {
	for _, s := range sources {
		ok := 0
		for i, r := range b.records {
			if r.EventSourceARN == s.arn && !b.failed[i] {
				ok++
			}
		}
		if ok > 0 {
			b.o.Metrics.Deleted(ctx, s.source, ok, 0, nil)
		}
	}
	done(ctx, b.o.Metrics, sources)
}

// metricsStart is the start of a measured operation: now, or with no
// Metrics the zero time, without reading the clock.
func metricsStart(m patterns.Metrics) time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}
