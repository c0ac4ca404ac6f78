package memaws

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// The flexible checksums S3 takes (x-amz-checksum-<alg>) and returns
// (on GetObject and HeadObject with x-amz-checksum-mode: ENABLED).
var s3ChecksumAlgs = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

// crc64NVME is CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5).
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func s3NewHash(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "CRC64NVME":
		return crc64.New(crc64NVME)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

// s3Checksum is the base64 checksum of data.
func s3Checksum(alg string, data []byte) string {
	h := s3NewHash(alg)
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func s3ChecksumHeader(alg string) string { return "X-Amz-Checksum-" + strings.ToLower(alg) }

// s3RequestChecksum finds the checksum a request carries in a header (or
// the aws-chunked trailer), checks it against data, and returns it:
// algorithm and base64 value, "" when the request carries none.
// A mismatch is BadDigest, as S3 answers it; so is a Content-MD5 mismatch.
func s3RequestChecksum(h http.Header, data []byte) (alg, value string, e *APIError) {
	if m := h.Get("Content-Md5"); m != "" {
		sum := md5.Sum(data)
		if m != base64.StdEncoding.EncodeToString(sum[:]) {
			return "", "", &APIError{Status: http.StatusBadRequest, Code: "BadDigest", Message: "The Content-MD5 you specified did not match what we received."}
		}
	}
	for _, a := range s3ChecksumAlgs {
		v := h.Get(s3ChecksumHeader(a))
		if v == "" {
			continue
		}
		if alg != "" {
			return "", "", &APIError{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."}
		}
		if s3Checksum(a, data) != v {
			return "", "", &APIError{Status: http.StatusBadRequest, Code: "BadDigest", Message: "The " + a + " you specified did not match the calculated checksum."}
		}
		alg, value = a, v
	}
	return alg, value, nil
}

// s3Body is a request's payload: decoded from aws-chunked encoding (the
// SDK's streaming uploads over https, with the checksum in a trailer,
// which joins the headers) when the request uses it.
func s3Body(r *request) ([]byte, http.Header, *APIError) {
	h := r.http.Header.Clone()
	if !strings.Contains(h.Get("Content-Encoding"), "aws-chunked") && !strings.HasPrefix(h.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return r.body, h, nil
	}
	data, trailer, err := decodeAWSChunked(r.body)
	if err != nil {
		return nil, nil, &APIError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "aws-chunked body: " + err.Error()}
	}
	if n := h.Get("X-Amz-Decoded-Content-Length"); n != "" && n != strconv.Itoa(len(data)) {
		return nil, nil, &APIError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "You did not provide the number of bytes specified by the Content-Length HTTP header"}
	}
	for k, v := range trailer {
		h[k] = v
	}
	// Content-Encoding kept with the object is what is left without
	// aws-chunked.
	var enc []string
	for _, e := range strings.Split(h.Get("Content-Encoding"), ",") {
		if e = strings.TrimSpace(e); e != "" && e != "aws-chunked" {
			enc = append(enc, e)
		}
	}
	h.Del("Content-Encoding")
	if len(enc) > 0 {
		h.Set("Content-Encoding", strings.Join(enc, ","))
	}
	return data, h, nil
}

// decodeAWSChunked reads "<hex size>[;chunk-signature=...]\r\n<data>\r\n"
// chunks up to a zero-size one, then trailer header lines.
func decodeAWSChunked(body []byte) ([]byte, http.Header, error) {
	br := bufio.NewReader(bytes.NewReader(body))
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, nil, errors.New("truncated chunk header")
		}
		sizeText, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
		if err != nil || size < 0 || size > int64(len(body)) {
			return nil, nil, errors.New("bad chunk size")
		}
		if size == 0 {
			break
		}
		if _, err := io.CopyN(&out, br, size); err != nil {
			return nil, nil, errors.New("truncated chunk")
		}
		var crlf [2]byte
		if _, err := io.ReadFull(br, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
			return nil, nil, errors.New("chunk not ended by CRLF")
		}
	}
	trailer := http.Header{}
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil || line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && !strings.EqualFold(k, "x-amz-trailer-signature") {
			trailer.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return out.Bytes(), trailer, nil
}

// s3ETag is the quoted hex MD5 of data.
func s3ETag(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hexString(sum[:]) + `"`
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// s3Atoi parses a non-negative int32.
func s3Atoi(v string) (int, bool) {
	n, err := strconv.ParseInt(v, 10, 32)
	return int(n), err == nil && n >= 0
}
