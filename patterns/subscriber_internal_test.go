package patterns

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
)

const testTopic = "arn:aws:sns:us-east-1:123456789012:orders"

// signer is a stand-in for SNS: a key, its certificate served over HTTP.
type signer struct {
	key     *rsa.PrivateKey
	certURL string
}

func newSigner(t *testing.T) *signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(pemBytes) }))
	t.Cleanup(srv.Close)
	return &signer{key: key, certURL: srv.URL + "/SimpleNotificationService-test.pem"}
}

func (s *signer) sign(t *testing.T, n *httpNotification, version string) []byte {
	t.Helper()
	n.SignatureVersion, n.SigningCertURL = version, s.certURL
	data := []byte(stringToSign(n))
	var sig []byte
	var err error
	if version == "1" {
		d := sha1.Sum(data)
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256(data)
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	n.Signature = base64.StdEncoding.EncodeToString(sig)
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type confirmRecorder struct{ tokens []string }

func (c *confirmRecorder) ConfirmSubscription(_ context.Context, in *sns.ConfirmSubscriptionInput, _ ...func(*sns.Options)) (*sns.ConfirmSubscriptionOutput, error) {
	c.tokens = append(c.tokens, *in.Token)
	return &sns.ConfirmSubscriptionOutput{}, nil
}

func post(h http.Handler, body []byte) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/sns", strings.NewReader(string(body))))
	return rec.Code
}

func TestHTTPSubscriberVerifies(t *testing.T) {
	s := newSigner(t)
	var got []string
	handlerErr := error(nil)
	confirm := &confirmRecorder{}
	sub, err := NewHTTPSubscriber(confirm, []string{testTopic}, func(_ context.Context, m *Message) error {
		got = append(got, string(m.Body)+"/"+m.Attr("color"))
		return handlerErr
	}, func(o *HTTPSubscriberOptions) {
		o.TrustCertURL = func(u *url.URL) bool { return strings.HasPrefix(u.String(), "http://127.0.0.1:") }
	})
	if err != nil {
		t.Fatal(err)
	}
	note := func() *httpNotification {
		return &httpNotification{Type: "Notification", MessageID: "m-1", TopicArn: testTopic, Message: "hello\nworld", Timestamp: "2026-11-24T10:00:00.000Z"}
	}
	// The attributes ride outside the signed fields, as SNS sends them.
	withAttrs := func(b []byte) []byte {
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		v["MessageAttributes"] = map[string]any{"color": map[string]string{"Type": "String", "Value": "orange"}}
		out, _ := json.Marshal(v)
		return out
	}

	for _, version := range []string{"1", "2"} {
		if code := post(sub, withAttrs(s.sign(t, note(), version))); code != http.StatusOK {
			t.Errorf("v%s: valid notification answered %d", version, code)
		}
	}
	if len(got) != 2 || got[0] != "hello\nworld/orange" {
		t.Errorf("handler saw %q", got)
	}

	subject := "s"
	n := note()
	n.Subject = &subject
	if code := post(sub, s.sign(t, n, "2")); code != http.StatusOK {
		t.Errorf("with Subject: %d", code)
	}

	// Tampering with a signed field breaks the signature.
	tampered := strings.Replace(string(s.sign(t, note(), "2")), "hello", "HELLO", 1)
	if code := post(sub, []byte(tampered)); code != http.StatusForbidden {
		t.Errorf("tampered: %d, want 403", code)
	}
	// A topic not in the list is refused before its signature is looked at.
	other := note()
	other.TopicArn = "arn:aws:sns:us-east-1:999999999999:evil"
	if code := post(sub, s.sign(t, other, "2")); code != http.StatusForbidden {
		t.Errorf("foreign topic: %d, want 403", code)
	}
	// A certificate from anywhere else is not fetched.
	n = note()
	body := s.sign(t, n, "2")
	body = []byte(strings.Replace(string(body), "http://127.0.0.1:", "http://attacker.example:", 1))
	if code := post(sub, body); code != http.StatusForbidden {
		t.Errorf("foreign cert URL: %d, want 403", code)
	}
	for _, bad := range []string{`{`, `{"Type":"Notification"}`, `[]`} {
		if code := post(sub, []byte(bad)); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}

	// A failing handler answers 500, so SNS retries.
	handlerErr = errors.New("boom")
	if code := post(sub, s.sign(t, note(), "2")); code != http.StatusInternalServerError {
		t.Errorf("handler error: %d, want 500", code)
	}
	handlerErr = nil

	// Confirmation uses the token, through the API (not the URL).
	c := &httpNotification{Type: "SubscriptionConfirmation", MessageID: "c-1", TopicArn: testTopic, Message: "confirm",
		Timestamp: "2026-11-24T10:00:00.000Z", Token: "tok-1", SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"}
	if code := post(sub, s.sign(t, c, "1")); code != http.StatusOK || len(confirm.tokens) != 1 || confirm.tokens[0] != "tok-1" {
		t.Errorf("confirmation: %d, tokens %v", code, confirm.tokens)
	}
}

func TestAWSSigningCertURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem":     true,
		"https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem": true,
		"http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem":      false,
		"https://sns.us-east-1.amazonaws.com.evil.com/x.pem":                        false,
		"https://evil.com/sns.us-east-1.amazonaws.com/x.pem":                        false,
		"https://sns.us-east-1.amazonaws.com:8443/x.pem":                            false,
		"https://sns.us-east-1.amazonaws.com/x.txt":                                 false,
	} {
		u, _ := url.Parse(raw)
		if got := AWSSigningCertURL(u); got != want {
			t.Errorf("%s: %v, want %v", raw, got, want)
		}
	}
}

func TestHTTPSubscriberConfig(t *testing.T) {
	h := func(context.Context, *Message) error { return nil }
	for name, cfg := range map[string]httpSubscriberConfig{
		"no topics": {SNS: &confirmRecorder{}},
		"no client": {TopicARNs: []string{testTopic}},
		"bad arn":   {TopicARNs: []string{"orders"}, SNS: &confirmRecorder{}},
	} {
		if _, err := NewHTTPSubscriber(cfg.SNS, cfg.TopicARNs, h); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
