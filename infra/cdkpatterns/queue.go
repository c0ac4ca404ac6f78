package cdkpatterns

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Defaults of QueueWithDLQProps.
const (
	DefaultMaxReceiveCount          = 5
	DefaultVisibilityTimeoutSeconds = 30
	// DLQRetentionDays is the retention of every DLQ: SQS's maximum. A
	// standard queue's message keeps its first enqueue time when redriven,
	// so a DLQ must keep messages longer than its source queue does.
	DLQRetentionDays = 14
)

// QueueWithDLQProps shapes a queue and its DLQ. The zero value is a
// standard queue with SQS-managed SSE, a 30 s visibility timeout, SQS's
// default 4-day retention and a DLQ after 5 receives.
type QueueWithDLQProps struct {
	// VisibilityTimeout: default 30 s. A queue a Lambda function consumes
	// needs at least LambdaVisibilityTimeout of the function.
	VisibilityTimeout awscdk.Duration
	// RetentionPeriod of the queue (not of the DLQ, always 14 days);
	// default SQS's 4 days. Keep it below 14 days for standard queues.
	RetentionPeriod awscdk.Duration
	// MaxReceiveCount: receives before SQS moves a message to the DLQ
	// (1-1000, default 5).
	MaxReceiveCount int
	// EncryptionKey encrypts the queue and its DLQ with KMS; nil:
	// SQS-managed SSE (no key to pay for or to grant).
	EncryptionKey awskms.IKey

	// Fifo makes both queues FIFO (their names end in .fifo).
	Fifo bool
	// ContentBasedDeduplication (FIFO only).
	ContentBasedDeduplication bool
	// HighThroughput (FIFO only): DeduplicationScope=messageGroup and
	// FifoThroughputLimit=perMessageGroupId, on the queue and its DLQ.
	HighThroughput bool
}

// QueueWithDLQ is a queue whose redrive policy moves a message to
// DeadLetterQueue after MaxReceiveCount receives.
type QueueWithDLQ struct {
	Queue           awssqs.Queue
	DeadLetterQueue awssqs.Queue
	// VisibilityTimeout is the queue's, as set (NewQueueFunction checks it).
	VisibilityTimeout awscdk.Duration
	// EncryptionKey is the KMS key of both queues, nil for SQS-managed SSE.
	EncryptionKey awskms.IKey
	Fifo          bool
}

// NewQueueWithDLQ provisions a queue and its DLQ: encrypted at rest,
// TLS-only (a queue policy denies requests without aws:SecureTransport),
// the DLQ keeping messages 14 days.
func NewQueueWithDLQ(scope constructs.Construct, id string, props *QueueWithDLQProps) QueueWithDLQ {
	p := QueueWithDLQProps{}
	if props != nil {
		p = *props
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	var problems []string
	if p.MaxReceiveCount == 0 {
		p.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if p.MaxReceiveCount < 1 || p.MaxReceiveCount > 1000 {
		problems = append(problems, fmt.Sprintf("MaxReceiveCount %d: want 1-1000", p.MaxReceiveCount))
	}
	if !p.Fifo && (p.ContentBasedDeduplication || p.HighThroughput) {
		problems = append(problems, "ContentBasedDeduplication and HighThroughput apply to FIFO queues only")
	}
	if p.VisibilityTimeout == nil {
		p.VisibilityTimeout = awscdk.Duration_Seconds(jsii.Number(DefaultVisibilityTimeoutSeconds))
	}
	invalid(c, problems...)

	base := func(retention awscdk.Duration) *awssqs.QueueProps {
		qp := &awssqs.QueueProps{
			EnforceSSL:      jsii.Bool(true),
			RetentionPeriod: retention,
			Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		}
		if p.EncryptionKey != nil {
			qp.Encryption = awssqs.QueueEncryption_KMS
			qp.EncryptionMasterKey = p.EncryptionKey
		}
		if p.Fifo {
			qp.Fifo = jsii.Bool(true)
			if p.ContentBasedDeduplication {
				qp.ContentBasedDeduplication = jsii.Bool(true)
			}
			if p.HighThroughput {
				qp.DeduplicationScope = awssqs.DeduplicationScope_MESSAGE_GROUP
				qp.FifoThroughputLimit = awssqs.FifoThroughputLimit_PER_MESSAGE_GROUP_ID
			}
		}
		return qp
	}

	dlq := awssqs.NewQueue(c, jsii.String("DLQ"), base(awscdk.Duration_Days(jsii.Number(DLQRetentionDays))))
	suppressDLQ(dlq)

	qp := base(p.RetentionPeriod)
	qp.VisibilityTimeout = p.VisibilityTimeout
	qp.DeadLetterQueue = &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(float64(p.MaxReceiveCount))}
	q := awssqs.NewQueue(c, jsii.String("Queue"), qp)

	return QueueWithDLQ{Queue: q, DeadLetterQueue: dlq, VisibilityTimeout: p.VisibilityTimeout, EncryptionKey: p.EncryptionKey, Fifo: p.Fifo}
}

// suppressDLQ records why a DLQ has no redrive policy of its own.
func suppressDLQ(dlq awssqs.Queue) {
	cdknag.NagSuppressions_AddResourceSuppressions(dlq, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("Serverless-SQSRedrivePolicy"),
		Reason: jsii.String("This queue is a dead-letter queue, the end of its source queue's redrive chain: a DLQ of the DLQ would only move the same messages again. Its messages are kept 14 days for inspection and redrive."),
	}}, jsii.Bool(false))
}
