package patterns

// Publish-subscribe without a queue: SNS delivers each notification to an
// HTTP(S) endpoint, and HTTPSubscriber is that endpoint.
//
// What this form is: SNS pushes to the subscribers it has at publish time.
// A subscriber that is down when a message is published gets it only if it
// comes back within the subscription's delivery retry policy (by default a
// few retries over about 20 seconds for HTTP); after that the message is
// gone for it. A subscriber that must not miss messages reads a queue
// chained to the topic instead (Chain): the queue keeps them until it
// comes back.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// ErrInvalidSignature: an HTTP notification whose signature does not verify,
// or whose signing certificate does not come from SNS.
var ErrInvalidSignature = errors.New("courier: invalid SNS message signature")

// SNSConfirmAPI is the call an HTTPSubscriber makes: confirming a
// subscription with the token SNS sent.
type SNSConfirmAPI interface {
	ConfirmSubscription(ctx context.Context, in *sns.ConfirmSubscriptionInput, optFns ...func(*sns.Options)) (*sns.ConfirmSubscriptionOutput, error)
}

// httpSubscriberConfig is what an HTTPSubscriber runs with.
type httpSubscriberConfig struct {
	SNS       SNSConfirmAPI
	TopicARNs []string
	HTTPSubscriberOptions
}

// HTTPSubscriberOptions configures an HTTPSubscriber (NewHTTPSubscriber).
type HTTPSubscriberOptions struct {
	// TrustCertURL says whether a SigningCertURL may be fetched. Default: an
	// https URL on sns.<region>.amazonaws.com (or .amazonaws.com.cn) ending
	// in .pem. Set it to accept an emulator's certificate in tests.
	TrustCertURL func(*url.URL) bool
	// SkipSignature turns signature checks off (for emulators that do not
	// sign, such as moto). Never in production.
	SkipSignature bool
	// HTTPClient fetches signing certificates. Default http.DefaultClient.
	HTTPClient *http.Client
	// MaxBodyBytes bounds a request body. Default 512 KiB (an SNS message
	// is at most 256 KiB; the JSON around it adds to that).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// HTTPSubscriber is an http.Handler that receives SNS notifications:
// it checks the topic and the signature, confirms subscriptions, and runs
// the Handler on each notification. A handler error (or panic) answers 500,
// so SNS retries the delivery under the subscription's delivery policy.
type HTTPSubscriber struct {
	handler Handler
	cfg     httpSubscriberConfig
	certs   sync.Map // cert URL -> *rsa.PublicKey
}

// NewHTTPSubscriber returns the endpoint; mount it on any path. client
// confirms subscriptions (ConfirmSubscription with the token, and
// AuthenticateOnUnsubscribe so that only the topic owner can remove the
// subscription). topicARNs are the topics the endpoint accepts messages
// from; anything else is refused with 403, as the SNS documentation asks,
// so nobody can subscribe the endpoint to a topic of theirs. h handles
// each message.
func NewHTTPSubscriber(client SNSConfirmAPI, topicARNs []string, h Handler, optFns ...func(*HTTPSubscriberOptions)) (*HTTPSubscriber, error) {
	cfg := httpSubscriberConfig{SNS: client, TopicARNs: topicARNs}
	for _, fn := range optFns {
		fn(&cfg.HTTPSubscriberOptions)
	}
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w: HTTPSubscriber needs a handler", ErrInvalidConfig)
	case len(cfg.TopicARNs) == 0:
		return nil, fmt.Errorf("%w: HTTPSubscriber needs TopicARNs, the topics it accepts", ErrInvalidConfig)
	case cfg.SNS == nil:
		return nil, fmt.Errorf("%w: HTTPSubscriber needs an SNS client to confirm subscriptions", ErrInvalidConfig)
	}
	for _, arn := range cfg.TopicARNs {
		if _, err := ParseTopicARN(arn); err != nil {
			return nil, err
		}
	}
	if cfg.TrustCertURL == nil {
		cfg.TrustCertURL = AWSSigningCertURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 512 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &HTTPSubscriber{handler: h, cfg: cfg}, nil
}

var snsCertHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// AWSSigningCertURL is the default TrustCertURL: https, an SNS host of an
// AWS region, a .pem file.
func AWSSigningCertURL(u *url.URL) bool {
	return u.Scheme == "https" && snsCertHost.MatchString(u.Hostname()) && u.Port() == "" &&
		strings.HasSuffix(u.Path, ".pem")
}

// httpNotification is what SNS POSTs to an HTTP endpoint.
type httpNotification struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	TopicArn         string `json:"TopicArn"`
	Subject          *string
	Message          string `json:"Message"`
	Timestamp        string `json:"Timestamp"`
	Token            string `json:"Token"`
	SubscribeURL     string `json:"SubscribeURL"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
}

func (s *HTTPSubscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "SNS posts notifications", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.refuse(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: body over %d bytes", ErrMessageTooLarge, s.cfg.MaxBodyBytes))
		return
	}
	var n httpNotification
	if err := json.Unmarshal(body, &n); err != nil || n.Type == "" || n.TopicArn == "" {
		s.refuse(w, http.StatusBadRequest, fmt.Errorf("%w: not an SNS HTTP message", ErrMalformedEnvelope))
		return
	}
	if t := r.Header.Get("x-amz-sns-message-type"); t != "" && t != n.Type {
		s.refuse(w, http.StatusBadRequest, fmt.Errorf("%w: header says %s, body says %s", ErrMalformedEnvelope, t, n.Type))
		return
	}
	if !slices.Contains(s.cfg.TopicARNs, n.TopicArn) {
		s.refuse(w, http.StatusForbidden, fmt.Errorf("%w: topic %s is not one this endpoint accepts", ErrInvalidSignature, n.TopicArn))
		return
	}
	if !s.cfg.SkipSignature {
		if err := s.verify(r.Context(), &n); err != nil {
			s.refuse(w, http.StatusForbidden, err)
			return
		}
	}
	switch n.Type {
	case "SubscriptionConfirmation":
		_, err := s.cfg.SNS.ConfirmSubscription(r.Context(), &sns.ConfirmSubscriptionInput{
			TopicArn: aws.String(n.TopicArn), Token: aws.String(n.Token), AuthenticateOnUnsubscribe: aws.String("true"),
		})
		if err != nil {
			s.cfg.Logger.Error("courier: confirming subscription", "topic", n.TopicArn, "err", err)
			http.Error(w, "confirmation failed", http.StatusBadGateway)
			return
		}
		s.cfg.Logger.Info("courier: subscription confirmed", "topic", n.TopicArn)
	case "UnsubscribeConfirmation":
		s.cfg.Logger.Warn("courier: unsubscribed from topic", "topic", n.TopicArn)
	case "Notification":
		m, err := ParseSNSEnvelope(body)
		if err != nil {
			s.refuse(w, http.StatusBadRequest, err)
			return
		}
		if err := s.run(r.Context(), m); err != nil {
			s.cfg.Logger.Warn("courier: handler failed; SNS will retry", "topic", n.TopicArn, "message_id", n.MessageID, "err", err)
			http.Error(w, "handler failed", http.StatusInternalServerError)
			return
		}
	default:
		s.refuse(w, http.StatusBadRequest, fmt.Errorf("%w: unknown message type %q", ErrMalformedEnvelope, n.Type))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *HTTPSubscriber) run(ctx context.Context, m *Message) error {
	return callSafely(ctx, s.handler, m)
}

func (s *HTTPSubscriber) refuse(w http.ResponseWriter, code int, err error) {
	s.cfg.Logger.Warn("courier: refused SNS HTTP request", "status", code, "err", err)
	http.Error(w, err.Error(), code)
}

// verify checks the signature as the SNS documentation describes: the
// certificate from an SNS URL, then RSA PKCS#1 v1.5 over the string to sign
// with SHA1 (SignatureVersion 1) or SHA256 (2).
func (s *HTTPSubscriber) verify(ctx context.Context, n *httpNotification) error {
	var h crypto.Hash
	switch n.SignatureVersion {
	case "1":
		h = crypto.SHA1
	case "2":
		h = crypto.SHA256
	default:
		return fmt.Errorf("%w: signature version %q", ErrInvalidSignature, n.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(n.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrInvalidSignature)
	}
	key, err := s.signingKey(ctx, n.SigningCertURL)
	if err != nil {
		return err
	}
	data := []byte(stringToSign(n))
	var digest []byte
	if h == crypto.SHA1 {
		d := sha1.Sum(data)
		digest = d[:]
	} else {
		d := sha256.Sum256(data)
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(key, h, digest, sig); err != nil {
		return fmt.Errorf("%w: %s %s does not verify", ErrInvalidSignature, n.Type, n.MessageID)
	}
	return nil
}

// stringToSign lists the fields in the order the SNS documentation gives,
// each as "Name\nvalue\n".
func stringToSign(n *httpNotification) string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", n.Message)
	add("MessageId", n.MessageID)
	if n.Type == "Notification" {
		if n.Subject != nil {
			add("Subject", *n.Subject)
		}
	} else {
		add("SubscribeURL", n.SubscribeURL)
	}
	add("Timestamp", n.Timestamp)
	if n.Type != "Notification" {
		add("Token", n.Token)
	}
	add("TopicArn", n.TopicArn)
	add("Type", n.Type)
	return b.String()
}

func (s *HTTPSubscriber) signingKey(ctx context.Context, certURL string) (*rsa.PublicKey, error) {
	if k, ok := s.certs.Load(certURL); ok {
		return k.(*rsa.PublicKey), nil
	}
	u, err := url.Parse(certURL)
	if err != nil || !s.cfg.TrustCertURL(u) {
		return nil, fmt.Errorf("%w: untrusted SigningCertURL %q", ErrInvalidSignature, certURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("courier: fetching SNS signing certificate: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("courier: fetching SNS signing certificate: status %d", resp.StatusCode)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%w: signing certificate is not PEM", ErrInvalidSignature)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: signing certificate: %v", ErrInvalidSignature, err)
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: signing certificate has no RSA key", ErrInvalidSignature)
	}
	s.certs.Store(certURL, key)
	return key, nil
}
