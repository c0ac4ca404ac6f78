package otelmetric_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/courier-aws/courier/memaws"
	"github.com/courier-aws/courier/patterns"
	"github.com/courier-aws/courier/patterns/otelmetric"
)

// Export courier's metrics to Prometheus and serve them on /metrics. In
// your code: the default registry, http.Handle("/metrics",
// promhttp.Handler()), and the MeterProvider set globally or given to
// otelmetric.New.
func Example_prometheus() {
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		panic(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())
	mx, err := otelmetric.New(otelmetric.WithMeterProvider(provider))
	if err != nil {
		panic(err)
	}

	// An in-memory SQS (memaws) stands in for AWS here.
	ctx := context.Background()
	sqsClient := sqs.NewFromConfig(memaws.New().Config(), func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, mx.Install) })
	out, _ := sqsClient.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("orders")})
	p, _ := patterns.NewProducer(sqsClient, *out.QueueUrl, func(o *patterns.ProducerOptions) { o.Metrics = mx })
	_ = p.Send(ctx, &patterns.Message{Body: []byte("order 1")}, &patterns.Message{Body: []byte("order 2")})

	server := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer server.Close()
	resp, err := http.Get(server.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if strings.HasPrefix(line, "messaging_client_sent_messages_total") ||
			strings.HasPrefix(line, "messaging_client_operation_duration_seconds_count") ||
			strings.HasPrefix(line, "courier_client_requests_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// courier_client_requests_total{rpc_method="CreateQueue",rpc_service="SQS",rpc_system="aws-api"} 1
	// courier_client_requests_total{rpc_method="SendMessageBatch",rpc_service="SQS",rpc_system="aws-api"} 1
	// messaging_client_operation_duration_seconds_count{messaging_destination_name="orders",messaging_operation_name="send",messaging_operation_type="send",messaging_system="aws_sqs"} 1
	// messaging_client_sent_messages_total{messaging_destination_name="orders",messaging_operation_name="send",messaging_system="aws_sqs"} 2
}
