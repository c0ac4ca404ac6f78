// Command infra is courier's CDK app. It composes the patterns of
// cdkpatterns into two stacks:
//
//   - CourierMessaging: every queue, topic and table; it deploys alone
//     (`cdk deploy CourierMessaging`), also to LocalStack, which runs no
//     Go Lambda functions without Docker.
//   - CourierCompute: the functions of lambdas/ and their event source
//     mappings, on the messaging stack's queues; it depends on it.
//
// Context: lambdaAssets, the directory holding <function>/bootstrap for
// each function (default ../dist/lambdas, written by `make lambdas`);
// logLevel, COURIER_LOG_LEVEL of every function (default info);
// aggregateTableRemoval, retain (default) or destroy: whether the state
// tables and the claim-check bucket outlive the stack (deploy-local
// destroys them); lambdaArchitecture, arm64 (default) or x86_64: what the
// bootstraps in lambdaAssets were built for (deploy-local builds and
// deploys them for the host's, which LocalStack's courier executor runs).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/cdkpatterns"
	"github.com/courier-aws/courier/lambdas/contract"
	"github.com/courier-aws/courier/patterns"
)

// Stack names.
const (
	MessagingStack = "CourierMessaging"
	ComputeStack   = "CourierCompute"
)

// RetryBackoff spaces the retries of the worker's and the subscriber's
// failed messages (COURIER_RETRY_BACKOFF): 5 s doubling to 15 min, with
// jitter, instead of the queue's visibility timeout each time.
const RetryBackoff = "5s,15m"

// config is what the app reads from the CDK context.
type config struct {
	LambdaAssets string
	LogLevel     string
	// Architecture of the functions (nil: arm64).
	Architecture awslambda.Architecture
	// TableRemoval is the aggregate table's removal policy ("" = retain).
	TableRemoval awscdk.RemovalPolicy
}

// courier is the composed app: its two stacks and what each pattern made.
type courier struct {
	Messaging, Compute awscdk.Stack

	Jobs            cdkpatterns.QueueWithDLQ // one-way / competing consumers
	JobsIdempotency cdkpatterns.IdempotencyTable
	Worker          cdkpatterns.QueueFunction
	RequestResponse cdkpatterns.RequestResponse
	Orders          cdkpatterns.TopicQueueChain  // fan-out with filters
	OrderPayloads   cdkpatterns.ClaimCheckBucket // orders above SNS's 256 KiB
	Subscriber      cdkpatterns.QueueFunction
	// SubscriberClaimChecked feeds the subscriber the claim-checked orders.
	SubscriberClaimChecked awslambda.EventSourceMapping
	Ledger                 cdkpatterns.FIFOChain
	Regions                cdkpatterns.RecipientListTargets
	Quotes                 cdkpatterns.ScatterGather
}

func main() {
	app := awscdk.NewApp(nil)
	cfg := config{
		LambdaAssets: contextString(app, "lambdaAssets", cdkpatterns.DefaultAssetRoot),
		LogLevel:     contextString(app, "logLevel", cdkpatterns.DefaultLogLevel),
	}
	switch r := contextString(app, "aggregateTableRemoval", "retain"); r {
	case "retain":
	case "destroy":
		cfg.TableRemoval = awscdk.RemovalPolicy_DESTROY
	default:
		fmt.Fprintf(os.Stderr, "infra: context aggregateTableRemoval=%q: want retain or destroy\n", r)
		os.Exit(1)
	}
	switch a := contextString(app, "lambdaArchitecture", "arm64"); a {
	case "arm64":
		cfg.Architecture = awslambda.Architecture_ARM_64()
	case "x86_64":
		cfg.Architecture = awslambda.Architecture_X86_64()
	default:
		fmt.Fprintf(os.Stderr, "infra: context lambdaArchitecture=%q: want arm64 or x86_64\n", a)
		os.Exit(1)
	}
	if err := checkAssets(cfg.LambdaAssets); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
	newCourier(app, cfg)
	app.Synth(nil)
}

// newCourier composes the two stacks in app.
func newCourier(app constructs.Construct, cfg config) courier {
	var c courier
	c.Messaging = awscdk.NewStack(app, jsii.String(MessagingStack), &awscdk.StackProps{
		Description: jsii.String("courier: queues, topics and tables of the messaging patterns"),
	})
	c.Compute = awscdk.NewStack(app, jsii.String(ComputeStack), &awscdk.StackProps{
		Description: jsii.String("courier: Lambda functions on the CourierMessaging queues"),
	})
	c.Compute.AddStackDependency(c.Messaging, jsii.String("its functions consume the messaging stack's queues"))

	fn := cdkpatterns.FunctionOptions{AssetRoot: cfg.LambdaAssets, LogLevel: cfg.LogLevel, Architecture: cfg.Architecture}
	m := c.Messaging

	// One-way: jobs for competing workers.
	c.Jobs = cdkpatterns.NewQueueWithDLQ(m, "Jobs", &cdkpatterns.QueueWithDLQProps{
		VisibilityTimeout: cdkpatterns.LambdaVisibilityTimeout(fn),
	})
	// Its jobs run once each, however often SQS delivers them: the
	// worker keeps idempotency records in a table of its own.
	c.JobsIdempotency = cdkpatterns.NewIdempotencyTable(m, "JobsIdempotency", &cdkpatterns.StateTableProps{RemovalPolicy: cfg.TableRemoval})
	c.Worker = cdkpatterns.NewQueueFunction(c.Compute, "Worker", &cdkpatterns.QueueFunctionProps{
		Name: "worker", Queue: c.Jobs, FunctionOptions: fn,
		Environment: map[string]string{
			contract.EnvIdempotencyTable: *c.JobsIdempotency.Table.TableName(),
			contract.EnvRetryBackoff:     RetryBackoff,
		},
	})
	c.JobsIdempotency.Grant(c.Worker.Role)

	// Request-response: the responder answers on requesters' reply queues.
	c.RequestResponse = cdkpatterns.NewRequestResponse(m, "RequestResponse", &cdkpatterns.RequestResponseProps{
		Responder: fn, FunctionScope: c.Compute,
	})

	// Topic-queue chain: every order to "all"; large ones (by body),
	// claim-checked ones (too big for SNS) and EU ones (by attribute) to
	// their own queues.
	c.Orders = cdkpatterns.NewTopicQueueChain(m, "Orders", &cdkpatterns.TopicQueueChainProps{
		Subscribers: []cdkpatterns.SubscriberProps{
			{Name: "all"},
			{
				Name:               "large",
				Queue:              cdkpatterns.QueueWithDLQProps{VisibilityTimeout: cdkpatterns.LambdaVisibilityTimeout(fn)},
				RawMessageDelivery: true,
				FilterPolicyWithMessageBody: map[string]awssns.FilterOrPolicy{
					"total": awssns.FilterOrPolicy_Filter(awssns.SubscriptionFilter_NumericFilter(&awssns.NumericConditions{
						GreaterThanOrEqualTo: jsii.Number(1000),
					})),
				},
			},
			{
				// Orders published through the claim check (above SNS's
				// 256 KiB) have a pointer for a body, which no body filter
				// can read ("total" is in S3): the "large" subscription
				// drops them. They come here instead, by the attribute
				// only pointers carry, for the subscriber.
				Name:               "claimchecked",
				Queue:              cdkpatterns.QueueWithDLQProps{VisibilityTimeout: cdkpatterns.LambdaVisibilityTimeout(fn)},
				RawMessageDelivery: true,
				FilterPolicy: map[string]awssns.SubscriptionFilter{
					patterns.ExtendedPayloadSizeAttribute: awssns.SubscriptionFilter_ExistsFilter(),
				},
			},
			{
				Name:               "eu",
				RawMessageDelivery: true,
				FilterPolicy: map[string]awssns.SubscriptionFilter{
					"region": awssns.SubscriptionFilter_StringFilter(&awssns.StringConditions{
						MatchPrefixes: jsii.Strings("eu-"),
					}),
				},
			},
		},
	})
	// Orders above SNS's 256 KiB go through a claim check: the payload in
	// S3, shared by every subscription, removed by the bucket's lifecycle
	// rule after the longest retention (no subscriber deletes it).
	c.OrderPayloads = cdkpatterns.NewClaimCheckBucket(m, "OrderPayloads", &cdkpatterns.ClaimCheckBucketProps{RemovalPolicy: cfg.TableRemoval})
	c.Subscriber = cdkpatterns.NewQueueFunction(c.Compute, "Subscriber", &cdkpatterns.QueueFunctionProps{
		Name: "subscriber", Queue: c.Orders.Subscribers["large"].QueueWithDLQ, FunctionOptions: fn,
		Environment: map[string]string{
			contract.EnvClaimCheckBucket: *c.OrderPayloads.Bucket.BucketName(),
			contract.EnvRetryBackoff:     RetryBackoff,
		},
	})
	// It also consumes the claim-checked orders (lambdas/functions
	// TestDeployedSubscriberClaimCheck: without this second mapping an
	// order above 256 KiB reaches no function).
	c.SubscriberClaimChecked = c.Subscriber.AddQueue("ClaimChecked", c.Orders.Subscribers["claimchecked"].QueueWithDLQ)
	c.OrderPayloads.GrantRead(c.Subscriber.Role)

	// FIFO: ledger entries in order per account, to two FIFO queues.
	c.Ledger = cdkpatterns.NewFIFOChain(m, "Ledger", &cdkpatterns.FIFOChainProps{
		ContentBasedDeduplication: true,
		Subscribers: []cdkpatterns.SubscriberProps{
			{Name: "balances", RawMessageDelivery: true},
			{Name: "audit", RawMessageDelivery: true},
		},
	})

	// Recipient list: the destinations a router picks from.
	c.Regions = cdkpatterns.NewRecipientListTargets(m, "Regions", &cdkpatterns.RecipientListTargetsProps{
		Queues: []string{"eu", "us"},
		Topics: []string{"audit"},
	})

	// Scatter-gather: quote requests to two carriers; the aggregator
	// gathers both answers.
	c.Quotes = cdkpatterns.NewScatterGather(m, "Quotes", &cdkpatterns.ScatterGatherProps{
		Responders: []cdkpatterns.SubscriberProps{
			{Name: "carrierA", RawMessageDelivery: true},
			{
				Name:               "carrierB",
				RawMessageDelivery: true,
				FilterPolicy: map[string]awssns.SubscriptionFilter{
					"destination": awssns.SubscriptionFilter_StringFilter(&awssns.StringConditions{
						Denylist: jsii.Strings("antarctica"),
					}),
				},
			},
		},
		Aggregator:         fn,
		FunctionScope:      c.Compute,
		TableRemovalPolicy: cfg.TableRemoval,
	})

	outputs(m, map[string]*string{
		"JobsQueueUrl":        c.Jobs.Queue.QueueUrl(),
		"RequestsQueueUrl":    c.RequestResponse.Requests.Queue.QueueUrl(),
		"OrdersTopicArn":      c.Orders.Topic.TopicArn(),
		"OrderPayloadsBucket": c.OrderPayloads.Bucket.BucketName(),
		"LedgerTopicArn":      c.Ledger.Topic.TopicArn(),
		"QuotesTopicArn":      c.Quotes.Scatter.Topic.TopicArn(),
		"ResultsQueueUrl":     c.Quotes.Results.Queue.QueueUrl(),
		"AggregateTable":      c.Quotes.Table.TableName(),
		"RegionsEuQueueUrl":   c.Regions.Queues["eu"].Queue.QueueUrl(),
	})
	return c
}

func outputs(stack awscdk.Stack, values map[string]*string) {
	for _, k := range sortedKeys(values) {
		awscdk.NewCfnOutput(stack, jsii.String(k), &awscdk.CfnOutputProps{Value: values[k]})
	}
}

func sortedKeys(m map[string]*string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func contextString(app constructs.Construct, key, def string) string {
	if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

// checkAssets says what to do when a function's bootstrap is missing,
// before CDK fails with "Cannot find asset".
func checkAssets(root string) error {
	for _, f := range contract.Functions() {
		p := filepath.Join(root, f.Name, "bootstrap")
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("lambda asset %s: %w: build the functions with `make lambdas`, or point -c lambdaAssets=DIR at DIR/<function>/bootstrap", p, err)
		}
	}
	return nil
}
