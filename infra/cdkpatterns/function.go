package cdkpatterns

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/courier-aws/courier/lambdas/contract"
)

// FunctionTag is the tag whose value names a function's entry in
// lambdas/contract.
const FunctionTag = "courier:function"

// Defaults of FunctionOptions.
const (
	// DefaultAssetRoot is where `make lambdas` puts <name>/bootstrap,
	// relative to infra/ (where cdk runs).
	DefaultAssetRoot              = "../dist/lambdas"
	DefaultFunctionTimeoutSeconds = 30
	DefaultMemorySize             = 256
	DefaultLogLevel               = "info"
	DefaultBatchSize              = 10
	DefaultLogRetention           = awslogs.RetentionDays_ONE_MONTH
	visibilityPerFunctionTimeout  = 6
	maxBatchingWindowSeconds      = 300
)

// FunctionOptions are the settings of a function from lambdas/ and of its
// event source mapping. The zero value takes every default.
type FunctionOptions struct {
	// AssetRoot holds <name>/bootstrap for each function (linux/arm64):
	// default DefaultAssetRoot. Code, when set, is used instead.
	AssetRoot string
	Code      awslambda.Code
	// LogLevel is COURIER_LOG_LEVEL: debug, info (default), warn, error.
	LogLevel string
	// Timeout of an invocation: default 30 s.
	Timeout awscdk.Duration
	// MemorySize in MB: default 256.
	MemorySize int
	// ReservedConcurrency, when set, reserves (and caps) the function's
	// concurrency. Unset by default: reserving takes from the account's
	// unreserved pool, which new accounts keep small.
	ReservedConcurrency *int
	// LogRetention of the function's log group: default one month.
	LogRetention awslogs.RetentionDays
	// Tracing: X-Ray tracing, off by default (see NewQueueFunction).
	Tracing awslambda.Tracing
	// Architecture of the bootstraps in AssetRoot: default arm64. A local
	// deploy builds and deploys them for the host's architecture instead
	// (LocalStack's courier executor runs them as host processes).
	Architecture awslambda.Architecture

	// BatchSize of the event source mapping: default 10.
	BatchSize int
	// MaxBatchingWindow: how long the mapping gathers a batch (standard
	// queues only); default none.
	MaxBatchingWindow awscdk.Duration
	// MaxConcurrency caps the concurrent invocations the mapping makes
	// (2-1000); default none.
	MaxConcurrency int
}

func (o FunctionOptions) withDefaults() FunctionOptions {
	if o.AssetRoot == "" {
		o.AssetRoot = DefaultAssetRoot
	}
	if o.LogLevel == "" {
		o.LogLevel = DefaultLogLevel
	}
	if o.Architecture == nil {
		o.Architecture = awslambda.Architecture_ARM_64()
	}
	if o.Timeout == nil {
		o.Timeout = awscdk.Duration_Seconds(jsii.Number(DefaultFunctionTimeoutSeconds))
	}
	if o.MemorySize == 0 {
		o.MemorySize = DefaultMemorySize
	}
	if o.LogRetention == "" {
		o.LogRetention = DefaultLogRetention
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	return o
}

// LambdaVisibilityTimeout is the least visibility timeout of a queue that
// a function with these options consumes: six times the function's
// timeout plus its batching window, as Lambda's documentation for SQS
// event sources asks, so that a batch retried after a throttle or a
// timeout is not received again while it still runs.
func LambdaVisibilityTimeout(o FunctionOptions) awscdk.Duration {
	return awscdk.Duration_Seconds(jsii.Number(leastVisibilitySeconds(o.withDefaults())))
}

func leastVisibilitySeconds(o FunctionOptions) float64 {
	s := visibilityPerFunctionTimeout * seconds(o.Timeout)
	if o.MaxBatchingWindow != nil {
		s += seconds(o.MaxBatchingWindow)
	}
	return s
}

func seconds(d awscdk.Duration) float64 { return *d.ToSeconds(nil) }

// QueueFunctionProps names a function of lambdas/contract, the queue it
// consumes, and the values of the variables it reads.
type QueueFunctionProps struct {
	// Name of the function in lambdas/contract (worker, responder, ...).
	Name string
	// Queue the function consumes.
	Queue QueueWithDLQ
	// Environment: every variable contract lists for Name except
	// COURIER_LOG_LEVEL (set from LogLevel), and no other.
	Environment map[string]string
	FunctionOptions
}

// QueueFunction is a function from lambdas/ with its role, log group and
// the event source mapping that feeds it Queue.
type QueueFunction struct {
	Function           awslambda.Function
	Role               awsiam.Role
	LogGroup           awslogs.LogGroup
	EventSourceMapping awslambda.EventSourceMapping

	scope   constructs.Construct
	options FunctionOptions // with defaults
	backoff bool            // COURIER_RETRY_BACKOFF is set
}

// AddQueue maps one more queue to the function, as NewQueueFunction maps
// its own: the same batch settings and partial batch responses, the same
// grants on the queue (and its key), the same checks (visibility timeout,
// batching window). id names the mapping under the function's construct.
func (f QueueFunction) AddQueue(id string, q QueueWithDLQ) awslambda.EventSourceMapping {
	c := constructs.NewConstruct(f.scope, jsii.String(id))
	var problems []string
	if q.Queue == nil {
		problems = append(problems, "no Queue to consume")
	} else {
		problems = append(problems, queueProblems(q, f.options)...)
	}
	invalid(c, problems...)
	if q.Queue == nil {
		return nil
	}
	return mapQueue(c, f.Function, f.Role, q, f.options, f.backoff)
}

// queueProblems: why a function with options o cannot consume q.
func queueProblems(q QueueWithDLQ, o FunctionOptions) []string {
	var problems []string
	if err := CheckVisibilityTimeout(seconds(q.VisibilityTimeout), o); err != nil {
		problems = append(problems, err.Error())
	}
	if o.MaxBatchingWindow != nil && q.Fifo {
		problems = append(problems, "MaxBatchingWindow is not supported on a FIFO queue")
	}
	return problems
}

// mapQueue maps q to fn (an event source mapping named EventSource under
// c, with ReportBatchItemFailures and o's batch settings) and grants role
// what Lambda's poller needs on q, and with backoff what the adapter's
// retry backoff needs.
func mapQueue(c constructs.Construct, fn awslambda.Function, role awsiam.Role, q QueueWithDLQ, o FunctionOptions, backoff bool) awslambda.EventSourceMapping {
	grant(role, []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}, *q.Queue.QueueArn())
	if backoff {
		// The adapter's retry backoff: the queue's URL from its ARN,
		// then the failed records' visibility.
		grant(role, []string{"sqs:GetQueueUrl", "sqs:ChangeMessageVisibility"}, *q.Queue.QueueArn())
	}
	if q.EncryptionKey != nil {
		grant(role, []string{"kms:Decrypt"}, *q.EncryptionKey.KeyArn())
	}
	mp := &awslambda.EventSourceMappingProps{
		Target:                  fn,
		EventSourceArn:          q.Queue.QueueArn(),
		BatchSize:               jsii.Number(float64(o.BatchSize)),
		MaxBatchingWindow:       o.MaxBatchingWindow,
		ReportBatchItemFailures: jsii.Bool(true),
	}
	if o.MaxConcurrency != 0 {
		mp.MaxConcurrency = jsii.Number(float64(o.MaxConcurrency))
	}
	esm := awslambda.NewEventSourceMapping(c, jsii.String("EventSource"), mp)
	// Lambda checks the role's permissions on the queue when it creates
	// the mapping: the role's policy must exist first.
	esm.Node().AddDependency(role)
	cdknag.NagSuppressions_AddResourceSuppressions(esm, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("Serverless-LambdaEventSourceMappingDestination"),
		Reason: jsii.String("SQS event source mappings take no on-failure destination (streams and Kafka only); the source queue's redrive policy to its DLQ is the failure destination."),
	}}, jsii.Bool(false))
	return esm
}

// NewQueueFunction provisions a function of lambdas/ consuming a queue:
// provided.al2023 on arm64, handler "bootstrap", its own log group with a
// retention, a role with no managed policy (it may write to its log group
// and receive, delete and read the attributes of its queue: what Lambda's
// SQS poller needs), and an event source mapping with
// ReportBatchItemFailures, so that a record the handler failed comes again
// and the others do not.
//
// Its environment is exactly what lambdas/contract lists for Name: a
// variable missing or extra is a validation error, as is a queue whose
// visibility timeout is below LambdaVisibilityTimeout.
//
// X-Ray tracing is off unless Tracing says otherwise: courier carries
// trace context across queues in message attributes, and active tracing
// costs per trace and needs xray:Put* on Resource "*".
func NewQueueFunction(scope constructs.Construct, id string, props *QueueFunctionProps) QueueFunction {
	p := QueueFunctionProps{}
	if props != nil {
		p = *props
	}
	o := p.FunctionOptions.withDefaults()
	c := constructs.NewConstruct(scope, jsii.String(id))

	env := map[string]string{contract.EnvLogLevel: o.LogLevel}
	for k, v := range p.Environment {
		if k != contract.EnvLogLevel {
			env[k] = v
		}
	}
	problems := CheckEnvironment(p.Name, keys(env))
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(o.LogLevel)) {
		problems = append(problems, fmt.Sprintf("LogLevel %q: want debug, info, warn or error", o.LogLevel))
	}
	if p.Queue.Queue == nil {
		problems = append(problems, "no Queue to consume")
	} else {
		problems = append(problems, queueProblems(p.Queue, o)...)
	}
	if o.MaxBatchingWindow != nil {
		if w := seconds(o.MaxBatchingWindow); w > maxBatchingWindowSeconds {
			problems = append(problems, fmt.Sprintf("MaxBatchingWindow %gs: want at most %ds", w, maxBatchingWindowSeconds))
		}
	}
	backoff := env[contract.EnvRetryBackoff]
	if backoff != "" {
		if _, _, err := contract.ParseRetryBackoff(backoff); err != nil {
			problems = append(problems, err.Error())
		}
	}
	invalid(c, problems...)

	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(fmt.Sprintf("courier %s function", p.Name)),
	})
	logs := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{Retention: o.LogRetention})
	logs.GrantWrite(role)

	code := o.Code
	if code == nil {
		code = awslambda.Code_FromAsset(jsii.String(filepath.Join(o.AssetRoot, p.Name)), nil)
	}
	fp := &awslambda.FunctionProps{
		Description:  jsii.String(fmt.Sprintf("courier %s (lambdas/%s)", p.Name, p.Name)),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: o.Architecture,
		Handler:      jsii.String("bootstrap"),
		Code:         code,
		Role:         role,
		LogGroup:     logs,
		Timeout:      o.Timeout,
		MemorySize:   jsii.Number(float64(o.MemorySize)),
		Environment:  stringMap(env),
	}
	if o.ReservedConcurrency != nil {
		fp.ReservedConcurrentExecutions = jsii.Number(float64(*o.ReservedConcurrency))
	}
	if o.Tracing != "" {
		fp.Tracing = o.Tracing
	}
	fn := awslambda.NewFunction(c, jsii.String("Function"), fp)
	// The tag names the contract entry: tests match the environment
	// against it, operators find the function by it.
	awscdk.Tags_Of(fn).Add(jsii.String(FunctionTag), jsii.String(p.Name), nil)

	var esm awslambda.EventSourceMapping
	if p.Queue.Queue != nil {
		esm = mapQueue(c, fn, role, p.Queue, o, backoff != "")
	}

	fnSuppressions := []*cdknag.NagPackSuppression{{
		Id:     jsii.String("Serverless-LambdaDLQ"),
		Reason: jsii.String("Only its SQS event source mapping invokes this function, synchronously; a function DLQ applies to asynchronous invocations. A record that keeps failing goes to the source queue's DLQ by its redrive policy."),
	}}
	if o.Tracing != awslambda.Tracing_ACTIVE {
		fnSuppressions = append(fnSuppressions, &cdknag.NagPackSuppression{
			Id:     jsii.String("Serverless-LambdaTracing"),
			Reason: jsii.String("courier carries trace context across queues in message attributes (OpenTelemetry); X-Ray active tracing costs per trace and needs xray:Put* on Resource '*', so it is opt-in (FunctionOptions.Tracing)."),
		})
	} else {
		cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
			Id:        jsii.String("AwsSolutions-IAM5"),
			Reason:    jsii.String("X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions: Resource '*' is their only form (added by Tracing ACTIVE)."),
			AppliesTo: &[]interface{}{jsii.String("Resource::*")},
		}}, jsii.Bool(true))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(fn, &fnSuppressions, jsii.Bool(false))

	return QueueFunction{Function: fn, Role: role, LogGroup: logs, EventSourceMapping: esm, scope: c, options: o, backoff: backoff != ""}
}

// CheckEnvironment returns a problem for each variable that function name
// reads (lambdas/contract) and env lacks, and for each one env sets that
// it does not read.
func CheckEnvironment(name string, env []string) []string {
	fn, ok := contract.Lookup(name)
	if !ok {
		return []string{fmt.Sprintf("no function %q in lambdas/contract", name)}
	}
	var problems []string
	for _, v := range fn.Env {
		if !slices.Contains(env, v) {
			problems = append(problems, fmt.Sprintf("function %s reads %s (lambdas/contract) but it is not set", name, v))
		}
	}
	for _, v := range env {
		if !slices.Contains(fn.Env, v) {
			problems = append(problems, fmt.Sprintf("function %s does not read %s (lambdas/contract) but it is set", name, v))
		}
	}
	return problems
}

// CheckVisibilityTimeout returns an error when a queue with this
// visibility timeout (seconds) is too short for a function with options o.
func CheckVisibilityTimeout(visibilitySeconds float64, o FunctionOptions) error {
	o = o.withDefaults()
	if least := leastVisibilitySeconds(o); visibilitySeconds < least {
		return fmt.Errorf("queue visibility timeout %gs is less than 6 x function timeout %gs + batching window = %gs: a retried batch would be received again while it still runs",
			visibilitySeconds, seconds(o.Timeout), least)
	}
	return nil
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func stringMap(m map[string]string) *map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = jsii.String(v)
	}
	return &out
}
