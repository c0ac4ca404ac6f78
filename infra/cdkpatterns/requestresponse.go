package cdkpatterns

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/patterns"
)

// RequestResponseProps shapes request-response: the request queue and the
// responder function (lambdas/responder) that answers it.
type RequestResponseProps struct {
	// Requests: the request queue. Its VisibilityTimeout defaults to
	// LambdaVisibilityTimeout(Responder).
	Requests QueueWithDLQProps
	// Responder: the function's options.
	Responder FunctionOptions
	// ReplyQueuePrefix: the responder may reply only to queues of its own
	// account and region whose names start with it. Default
	// patterns.DefaultReplyQueuePrefix ("courier-reply-"), the prefix of a
	// Requester's reply queues.
	ReplyQueuePrefix string
	// FunctionScope is where the responder goes (e.g. a compute stack);
	// nil: scope.
	FunctionScope constructs.Construct
}

// RequestResponse is a request queue and the responder consuming it.
type RequestResponse struct {
	Requests  QueueWithDLQ
	Responder QueueFunction
	// ReplyQueueArns is the ARN pattern of the queues the responder may
	// send replies to (arn:PARTITION:sqs:REGION:ACCOUNT:PREFIX*).
	ReplyQueueArns *string
}

// NewRequestResponse provisions request-response: a request queue (+DLQ)
// and the responder function on it. The responder may send only to reply
// queues named ReplyQueuePrefix* in its account and region: its role
// allows sqs:SendMessage on that ARN pattern and nothing else beyond its
// queue and logs, and COURIER_REPLY_ALLOWLIST gives the same pattern to the
// code, which refuses any other return address before it sends.
func NewRequestResponse(scope constructs.Construct, id string, props *RequestResponseProps) RequestResponse {
	p := RequestResponseProps{}
	if props != nil {
		p = *props
	}
	if p.ReplyQueuePrefix == "" {
		p.ReplyQueuePrefix = patterns.DefaultReplyQueuePrefix
	}
	if p.Requests.VisibilityTimeout == nil {
		p.Requests.VisibilityTimeout = LambdaVisibilityTimeout(p.Responder)
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	requests := NewQueueWithDLQ(c, "Requests", &p.Requests)

	fc := functionScope(c, p.FunctionScope, id)
	replyArns := awscdk.Stack_Of(fc).FormatArn(&awscdk.ArnComponents{
		Service:  jsii.String("sqs"),
		Resource: jsii.String(p.ReplyQueuePrefix + "*"),
	})
	responder := NewQueueFunction(fc, "Responder", &QueueFunctionProps{
		Name:  "responder",
		Queue: requests,
		Environment: map[string]string{
			contract.EnvQueueURL:       *requests.Queue.QueueUrl(),
			contract.EnvReplyAllowlist: *replyArns,
		},
		FunctionOptions: p.Responder,
	})
	grant(responder.Role, []string{"sqs:SendMessage"}, *replyArns)
	cdknag.NagSuppressions_AddResourceSuppressions(responder.Role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Reply queues are created per requester at run time (patterns.Requester), so no ARN is known at deploy time: " +
			"the responder may send (sqs:SendMessage only) to the queues whose names start with the reply prefix, in its own account and region."),
		AppliesTo: &[]interface{}{jsii.String("Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:" + p.ReplyQueuePrefix + "*")},
	}}, jsii.Bool(true))

	return RequestResponse{Requests: requests, Responder: responder, ReplyQueueArns: replyArns}
}

// functionScope returns the scope of a pattern's functions: a construct
// named id under the FunctionScope given, else the pattern's own.
func functionScope(own, given constructs.Construct, id string) constructs.Construct {
	if given == nil {
		return own
	}
	return constructs.NewConstruct(given, jsii.String(id))
}
