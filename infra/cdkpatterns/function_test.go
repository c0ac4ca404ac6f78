package cdkpatterns_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/courier-aws/courier/infra/cdkpatterns"
	"github.com/courier-aws/courier/infra/internal/infratest"
	"github.com/courier-aws/courier/lambdas/contract"
)

func TestQueueFunction(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["Function"]
	tpl := f.templates["Function"]
	fn := idOf(st, f.fn.Function.FunctionName())
	f.has(t, "Function", "AWS::Lambda::Function", map[string]any{
		"Runtime":                      "provided.al2023",
		"Architectures":                []any{"arm64"},
		"Handler":                      "bootstrap",
		"MemorySize":                   512,
		"Timeout":                      45,
		"ReservedConcurrentExecutions": 2,
		"TracingConfig":                map[string]any{"Mode": "Active"},
		"LoggingConfig":                map[string]any{"LogGroup": ref(idOf(st, f.fn.LogGroup.LogGroupName()))},
		"Environment": map[string]any{"Variables": map[string]any{
			contract.EnvLogLevel: "debug", contract.EnvIdempotencyTable: ref(idOf(st, f.idem.Table.TableName())),
			contract.EnvRetryBackoff: "2s,10m",
		}},
		"Tags": []any{map[string]any{"Key": cdkpatterns.FunctionTag, "Value": "worker"}},
	})
	f.has(t, "Function", "AWS::Logs::LogGroup", map[string]any{"RetentionInDays": 30})
	f.has(t, "Function", "AWS::Lambda::EventSourceMapping", map[string]any{
		"FunctionName":                   ref(fn),
		"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
		"BatchSize":                      5,
		"MaximumBatchingWindowInSeconds": 10,
		"ScalingConfig":                  map[string]any{"MaximumConcurrency": 4},
	})

	// The role: no managed policy; its queue, its logs, X-Ray (Tracing
	// ACTIVE), its idempotency table (items only) and that table's key,
	// and the retry backoff's GetQueueUrl and ChangeMessageVisibility on
	// its queue, nothing else.
	role := idOf(st, f.fn.Role.RoleName())
	f.has(t, "Function", "AWS::IAM::Role", map[string]any{"ManagedPolicyArns": assertions.Match_Absent()})
	got := policyActions(t, tpl, role)
	want := []string{
		"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
		"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
		"logs:CreateLogStream", "logs:PutLogEvents",
		"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage",
		"xray:PutTelemetryRecords", "xray:PutTraceSegments",
	}
	if !slices.Equal(got, want) {
		t.Errorf("function role allows %v, want exactly %v", got, want)
	}
}

func TestQueueFunctionDefaults(t *testing.T) {
	f := getFixture(t)
	st := f.stacks["RequestResponseCompute"]
	p := infratest.Props(infratest.Resources(f.templates["RequestResponseCompute"], "AWS::Lambda::Function")[idOf(st, f.rr.Responder.Function.FunctionName())])
	for k, want := range map[string]any{"MemorySize": float64(256), "Timeout": float64(30)} {
		if p[k] != want {
			t.Errorf("%s = %v, want %v", k, p[k], want)
		}
	}
	for _, k := range []string{"ReservedConcurrentExecutions", "TracingConfig", "DeadLetterConfig"} {
		if p[k] != nil {
			t.Errorf("%s = %v, want unset", k, p[k])
		}
	}
}

func TestQueueFunctionInvalidProps(t *testing.T) {
	short := awscdk.Duration_Seconds(jsii.Number(60))
	for _, tc := range []struct {
		name  string
		props func(q cdkpatterns.QueueWithDLQ, fifo cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps
		want  string
	}{
		{"unknown function", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "nope", Queue: q}
		}, `no function "nope"`},
		{"missing variable", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "responder", Queue: q, Environment: map[string]string{contract.EnvQueueURL: "u"}}
		}, "reads COURIER_REPLY_ALLOWLIST (lambdas/contract) but it is not set"},
		{"extra variable", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "worker", Queue: q, Environment: map[string]string{"DEBUG": "1"}}
		}, "does not read DEBUG"},
		{"visibility timeout", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "worker", Queue: q, FunctionOptions: cdkpatterns.FunctionOptions{Timeout: short}}
		}, "less than 6 x function timeout"},
		{"batching window counts", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "worker", Queue: q, FunctionOptions: cdkpatterns.FunctionOptions{
				Timeout: awscdk.Duration_Seconds(jsii.Number(30)), MaxBatchingWindow: awscdk.Duration_Seconds(jsii.Number(1)),
			}}
		}, "= 181s"},
		{"log level", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "worker", Queue: q, FunctionOptions: cdkpatterns.FunctionOptions{LogLevel: "verbose"}}
		}, `LogLevel "verbose"`},
		{"retry backoff", func(q, _ cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "worker", Queue: q, Environment: map[string]string{
				contract.EnvIdempotencyTable: "", contract.EnvRetryBackoff: "5m,1s",
			}}
		}, "want 0 < base <= max <= 12h"},
		{"batching window on FIFO", func(_, fifo cdkpatterns.QueueWithDLQ) cdkpatterns.QueueFunctionProps {
			return cdkpatterns.QueueFunctionProps{Name: "worker", Queue: fifo, FunctionOptions: cdkpatterns.FunctionOptions{MaxBatchingWindow: awscdk.Duration_Seconds(jsii.Number(1))}}
		}, "not supported on a FIFO queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := awscdk.NewStack(nil, jsii.String("Invalid"), nil)
			q := cdkpatterns.NewQueueWithDLQ(stack, "Q", &cdkpatterns.QueueWithDLQProps{VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(180))})
			fifo := cdkpatterns.NewQueueWithDLQ(stack, "F", &cdkpatterns.QueueWithDLQProps{Fifo: true, VisibilityTimeout: awscdk.Duration_Minutes(jsii.Number(10))})
			p := tc.props(q, fifo)
			p.Code = awscdkAssetPlaceholder(t)
			cdkpatterns.NewQueueFunction(stack, "Fn", &p)
			wantProblem(t, stack, "Fn", tc.want)
		})
	}
}

func TestLambdaVisibilityTimeout(t *testing.T) {
	for _, tc := range []struct {
		o    cdkpatterns.FunctionOptions
		want float64
	}{
		{cdkpatterns.FunctionOptions{}, 180},
		{cdkpatterns.FunctionOptions{Timeout: awscdk.Duration_Minutes(jsii.Number(1))}, 360},
		{cdkpatterns.FunctionOptions{Timeout: awscdk.Duration_Seconds(jsii.Number(10)), MaxBatchingWindow: awscdk.Duration_Seconds(jsii.Number(5))}, 65},
	} {
		if got := *cdkpatterns.LambdaVisibilityTimeout(tc.o).ToSeconds(nil); got != tc.want {
			t.Errorf("LambdaVisibilityTimeout(%v) = %gs, want %gs", tc.o, got, tc.want)
		}
		if err := cdkpatterns.CheckVisibilityTimeout(tc.want, tc.o); err != nil {
			t.Errorf("CheckVisibilityTimeout(%g): %v", tc.want, err)
		}
		if err := cdkpatterns.CheckVisibilityTimeout(tc.want-1, tc.o); err == nil {
			t.Errorf("CheckVisibilityTimeout(%g) passed, want an error", tc.want-1)
		}
	}
}

func TestCheckEnvironment(t *testing.T) {
	for _, fn := range contract.Functions() {
		if p := cdkpatterns.CheckEnvironment(fn.Name, fn.Env); len(p) != 0 {
			t.Errorf("%s with its own contract: %v", fn.Name, p)
		}
		if p := cdkpatterns.CheckEnvironment(fn.Name, append(slices.Clone(fn.Env), "X")); len(p) != 1 {
			t.Errorf("%s with X: %v, want one problem", fn.Name, p)
		}
		if p := cdkpatterns.CheckEnvironment(fn.Name, fn.Env[1:]); len(p) != 1 {
			t.Errorf("%s without %s: %v, want one problem", fn.Name, fn.Env[0], p)
		}
	}
}
