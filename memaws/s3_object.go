package memaws

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

func noSuchKey() *APIError {
	return &APIError{Status: http.StatusNotFound, Code: "NoSuchKey", Message: "The specified key does not exist."}
}

func preconditionFailed() *APIError {
	return &APIError{Status: http.StatusPreconditionFailed, Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
}

// s3ObjectHeaders are the headers S3 keeps from an upload: the stored
// content headers and the user metadata (x-amz-meta-*).
func s3ObjectHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range storedHeaders {
		if v := h.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	for k, v := range h {
		if strings.HasPrefix(k, "X-Amz-Meta-") {
			out[k] = v
		}
	}
	if out.Get("Content-Type") == "" {
		out.Set("Content-Type", "binary/octet-stream")
	}
	return out
}

// s3PutObject stores an object whole. A request without a checksum gets
// the CRC64NVME S3 computes for every new object since 2025.
func (s *Server) s3PutObject(r *request, name, key string) (*http.Response, *APIError) {
	b, e := s.s3Bucket(name)
	if e != nil {
		return nil, e
	}
	if len(key) > 1024 {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "KeyTooLongError", Message: "Your key is too long"}
	}
	data, h, e := s3Body(r)
	if e != nil {
		return nil, e
	}
	alg, sum, e := s3RequestChecksum(h, data)
	if e != nil {
		return nil, e
	}
	old := b.objects[key]
	if e := s3WritePreconditions(h, old); e != nil {
		return nil, e
	}
	if alg == "" {
		alg, sum = "CRC64NVME", s3Checksum("CRC64NVME", data)
	}
	var oldLen int64
	if old != nil {
		oldLen = int64(len(old.data))
	}
	if e := s.s3ReserveLocked(int64(len(data)) - oldLen); e != nil {
		return nil, e
	}
	o := &object{
		data: append([]byte(nil), data...), etag: s3ETag(data), modified: s.nowLocked(), headers: s3ObjectHeaders(h),
		checksumAlg: alg, checksum: sum, checksumType: "FULL_OBJECT",
	}
	b.objects[key] = o
	resp := response(http.StatusOK, "", nil)
	resp.Header.Set("ETag", o.etag)
	resp.Header.Set(s3ChecksumHeader(alg), sum)
	resp.Header.Set("X-Amz-Checksum-Type", o.checksumType)
	return resp, nil
}

// s3WritePreconditions checks the conditional-write headers of a
// PutObject or CompleteMultipartUpload against the current object.
func s3WritePreconditions(h http.Header, old *object) *APIError {
	if v := h.Get("If-None-Match"); v == "*" && old != nil {
		return preconditionFailed()
	}
	if v := h.Get("If-Match"); v != "" {
		if old == nil {
			return noSuchKey()
		}
		if v != "*" && strings.Trim(v, `"`) != strings.Trim(old.etag, `"`) {
			return preconditionFailed()
		}
	}
	return nil
}

// s3GetObject serves GetObject and HeadObject: the whole object, a Range
// of it, or one part of a multipart object (partNumber).
func (s *Server) s3GetObject(r *request, name, key string, head bool) (*http.Response, *APIError) {
	b, e := s.s3Bucket(name)
	if e != nil {
		return nil, e
	}
	o, ok := b.objects[key]
	if !ok {
		return nil, noSuchKey()
	}
	h := r.http.Header
	if v := h.Get("If-Match"); v != "" && strings.Trim(v, `"`) != strings.Trim(o.etag, `"`) {
		return nil, preconditionFailed()
	}
	if v := h.Get("If-Unmodified-Since"); v != "" && h.Get("If-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && o.modified.Truncate(time.Second).After(t) {
			return nil, preconditionFailed()
		}
	}
	notModified := false
	if v := h.Get("If-None-Match"); v != "" {
		notModified = strings.Trim(v, `"`) == strings.Trim(o.etag, `"`)
	} else if v := h.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !o.modified.Truncate(time.Second).After(t) {
			notModified = true
		}
	}
	if notModified {
		resp := response(http.StatusNotModified, "", nil)
		resp.Header.Set("ETag", o.etag)
		return resp, nil
	}

	size := int64(len(o.data))
	start, end, partial := int64(0), size-1, false
	q := r.http.URL.Query()
	if pn := q.Get("partNumber"); pn != "" {
		n, ok := s3Atoi(pn)
		if !ok || n < 1 || n > 10000 {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Part number must be an integer between 1 and 10000, inclusive"}
		}
		if n > max(o.parts, 1) {
			return nil, &APIError{Status: http.StatusRequestedRangeNotSatisfiable, Code: "InvalidPartNumber", Message: "The requested partnumber is not satisfiable"}
		}
		if o.parts > 0 {
			start = 0
			for _, ps := range o.partSizes[:n-1] {
				start += ps
			}
			end, partial = start+o.partSizes[n-1]-1, true
		}
	} else if rg := h.Get("Range"); rg != "" {
		st, en, ok, satisfiable := s3ParseRange(rg, size)
		if ok && !satisfiable {
			return nil, &APIError{Status: http.StatusRequestedRangeNotSatisfiable, Code: "InvalidRange", Message: "The requested range is not satisfiable"}
		}
		if ok {
			start, end, partial = st, en, true
		}
	}

	var body []byte
	if !head && size > 0 {
		body = o.data[start : end+1]
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
	}
	resp := response(status, "", body)
	for k, v := range o.headers {
		// A copy: the SDK trims header values in place, and concurrent
		// GetObjects of one object must not share them.
		resp.Header[k] = append([]string(nil), v...)
	}
	resp.Header.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	resp.ContentLength = end - start + 1
	if partial {
		resp.Header.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
	}
	resp.Header.Set("ETag", o.etag)
	resp.Header.Set("Last-Modified", o.modified.UTC().Format(http.TimeFormat))
	resp.Header.Set("Accept-Ranges", "bytes")
	if o.parts > 0 {
		resp.Header.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(o.parts))
	}
	// S3 returns the checksum on request, and only of the whole object.
	if strings.EqualFold(h.Get("X-Amz-Checksum-Mode"), "ENABLED") && o.checksum != "" && !partial {
		resp.Header.Set(s3ChecksumHeader(o.checksumAlg), o.checksum)
		resp.Header.Set("X-Amz-Checksum-Type", o.checksumType)
	}
	return resp, nil
}

// s3ParseRange reads a single "bytes=" range. ok is false for what S3
// ignores (not a bytes range, several ranges): the whole object is sent.
func s3ParseRange(v string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "" && b == "": // "bytes=-"
		return 0, 0, false, false
	case a == "": // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(size-n, 0), size - 1, true, true
	default:
		st, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return 0, 0, false, false
		}
		en := size - 1
		if b != "" {
			if en, err = strconv.ParseInt(b, 10, 64); err != nil || en < st {
				return 0, 0, false, false
			}
			en = min(en, size-1)
		}
		if st >= size {
			return 0, 0, true, false
		}
		return st, en, true, true
	}
}
