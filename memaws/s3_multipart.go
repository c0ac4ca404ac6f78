package memaws

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// upload is a multipart upload in progress.
type upload struct {
	key          string
	initiated    time.Time
	headers      http.Header
	checksumAlg  string // "" when CreateMultipartUpload named none
	checksumType string // COMPOSITE or FULL_OBJECT
	parts        map[int]*part
}

type part struct {
	data     []byte
	etag     string
	checksum string // base64, of checksumAlg
}

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

func noSuchUpload() *APIError {
	return &APIError{Status: http.StatusNotFound, Code: "NoSuchUpload",
		Message: "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."}
}

func (s *Server) s3Upload(r *request, name, key string) (*bucket, *upload, *APIError) {
	b, e := s.s3Bucket(name)
	if e != nil {
		return nil, nil, e
	}
	u, ok := b.uploads[r.http.URL.Query().Get("uploadId")]
	if !ok || u.key != key {
		return nil, nil, noSuchUpload()
	}
	return b, u, nil
}

func (s *Server) s3CreateMultipartUpload(r *request, name, key string) (*http.Response, *APIError) {
	b, e := s.s3Bucket(name)
	if e != nil {
		return nil, e
	}
	h := r.http.Header
	alg := strings.ToUpper(h.Get("X-Amz-Checksum-Algorithm"))
	if alg != "" && s3NewHash(alg) == nil {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "Checksum algorithm provided is unsupported: " + alg}
	}
	typ := strings.ToUpper(h.Get("X-Amz-Checksum-Type"))
	switch {
	case typ == "" && alg == "":
		typ = "FULL_OBJECT" // S3 gives it CRC64NVME at completion
	case typ == "" && alg == "CRC64NVME":
		typ = "FULL_OBJECT"
	case typ == "":
		typ = "COMPOSITE"
	case typ == "FULL_OBJECT" && (alg == "SHA1" || alg == "SHA256"), typ == "COMPOSITE" && alg == "CRC64NVME",
		typ != "FULL_OBJECT" && typ != "COMPOSITE":
		return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidRequest", Message: "The " + typ + " checksum type cannot be used with the " + alg + " checksum algorithm."}
	}
	id := base64.RawURLEncoding.EncodeToString([]byte("memaws-upload-" + strconv.FormatUint(s.nextID(), 10)))
	b.uploads[id] = &upload{key: key, initiated: s.nowLocked(), headers: s3ObjectHeaders(h), checksumAlg: alg, checksumType: typ, parts: map[int]*part{}}
	resp := xmlResponse(http.StatusOK, struct {
		XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadId string
	}{Bucket: name, Key: key, UploadId: id})
	if alg != "" {
		resp.Header.Set("X-Amz-Checksum-Algorithm", alg)
		resp.Header.Set("X-Amz-Checksum-Type", typ)
	}
	return resp, nil
}

func (s *Server) s3UploadPart(r *request, name, key string) (*http.Response, *APIError) {
	_, u, e := s.s3Upload(r, name, key)
	if e != nil {
		return nil, e
	}
	n, ok := s3Atoi(r.http.URL.Query().Get("partNumber"))
	if !ok || n < 1 || n > 10000 {
		return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Part number must be an integer between 1 and 10000, inclusive"}
	}
	data, h, e := s3Body(r)
	if e != nil {
		return nil, e
	}
	alg, sum, e := s3RequestChecksum(h, data)
	if e != nil {
		return nil, e
	}
	if u.checksumAlg != "" {
		switch alg {
		case u.checksumAlg:
		case "":
			alg, sum = u.checksumAlg, s3Checksum(u.checksumAlg, data)
		default:
			return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidRequest",
				Message: "Checksum Type mismatch occurred, expected checksum Type: " + strings.ToLower(u.checksumAlg) + ", actual checksum Type: " + strings.ToLower(alg)}
		}
	}
	var oldLen int64
	if old, ok := u.parts[n]; ok {
		oldLen = int64(len(old.data))
	}
	if e := s.s3ReserveLocked(int64(len(data)) - oldLen); e != nil {
		return nil, e
	}
	p := &part{data: append([]byte(nil), data...), etag: s3ETag(data), checksum: sum}
	u.parts[n] = p
	resp := response(http.StatusOK, "", nil)
	resp.Header.Set("ETag", p.etag)
	if alg != "" {
		resp.Header.Set(s3ChecksumHeader(alg), sum)
	}
	return resp, nil
}

func (s *Server) s3CompleteMultipartUpload(r *request, name, key string) (*http.Response, *APIError) {
	b, u, e := s.s3Upload(r, name, key)
	if e != nil {
		return nil, e
	}
	var in struct {
		Parts []struct {
			PartNumber        int
			ETag              string
			ChecksumCRC32     string
			ChecksumCRC32C    string
			ChecksumCRC64NVME string
			ChecksumSHA1      string
			ChecksumSHA256    string
		} `xml:"Part"`
	}
	if err := xml.Unmarshal(r.body, &in); err != nil || len(in.Parts) == 0 {
		return nil, malformedXML()
	}
	invalidPart := &APIError{Status: http.StatusBadRequest, Code: "InvalidPart",
		Message: "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."}
	var (
		data      []byte
		sizes     []int64
		md5s      []byte
		sums      []byte
		reserved  int64
		composite = u.checksumAlg != "" && u.checksumType == "COMPOSITE"
	)
	for i, ip := range in.Parts {
		if i > 0 && ip.PartNumber <= in.Parts[i-1].PartNumber {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "InvalidPartOrder", Message: "The list of parts was not in ascending order. Parts must be ordered by part number."}
		}
		p, ok := u.parts[ip.PartNumber]
		if !ok || strings.Trim(ip.ETag, `"`) != strings.Trim(p.etag, `"`) {
			return nil, invalidPart
		}
		given := map[string]string{"CRC32": ip.ChecksumCRC32, "CRC32C": ip.ChecksumCRC32C, "CRC64NVME": ip.ChecksumCRC64NVME, "SHA1": ip.ChecksumSHA1, "SHA256": ip.ChecksumSHA256}
		if v := given[u.checksumAlg]; u.checksumAlg != "" && v != "" && v != p.checksum {
			return nil, invalidPart
		}
		if i < len(in.Parts)-1 && len(p.data) < minPartSize {
			return nil, &APIError{Status: http.StatusBadRequest, Code: "EntityTooSmall", Message: "Your proposed upload is smaller than the minimum allowed object size."}
		}
		data = append(data, p.data...)
		sizes = append(sizes, int64(len(p.data)))
		m := md5.Sum(p.data)
		md5s = append(md5s, m[:]...)
		if composite {
			raw, _ := base64.StdEncoding.DecodeString(p.checksum)
			sums = append(sums, raw...)
		}
	}
	old := b.objects[key]
	if e := s3WritePreconditions(r.http.Header, old); e != nil {
		return nil, e
	}
	// The parts become the object: what was reserved for every part of
	// the upload (listed or not) and the old object is given back.
	for _, p := range u.parts {
		reserved += int64(len(p.data))
	}
	if old != nil {
		reserved += int64(len(old.data))
	}
	if e := s.s3ReserveLocked(int64(len(data)) - reserved); e != nil {
		return nil, e
	}
	n := len(in.Parts)
	etagSum := md5.Sum(md5s)
	o := &object{
		data: data, etag: `"` + hexString(etagSum[:]) + "-" + strconv.Itoa(n) + `"`, modified: s.nowLocked(), headers: u.headers,
		checksumAlg: u.checksumAlg, checksumType: u.checksumType, parts: n, partSizes: sizes,
	}
	switch {
	case composite:
		h := s3NewHash(u.checksumAlg)
		h.Write(sums)
		o.checksum = base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(n)
	case u.checksumAlg != "":
		o.checksum = s3Checksum(u.checksumAlg, data)
	default:
		o.checksumAlg, o.checksum = "CRC64NVME", s3Checksum("CRC64NVME", data)
	}
	b.objects[key] = o
	delete(b.uploads, r.http.URL.Query().Get("uploadId"))

	out := struct {
		XMLName           xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
		Location          string
		Bucket            string
		Key               string
		ETag              string
		ChecksumCRC32     string `xml:",omitempty"`
		ChecksumCRC32C    string `xml:",omitempty"`
		ChecksumCRC64NVME string `xml:",omitempty"`
		ChecksumSHA1      string `xml:",omitempty"`
		ChecksumSHA256    string `xml:",omitempty"`
		ChecksumType      string `xml:",omitempty"`
	}{Location: Endpoint + "/" + name + "/" + key, Bucket: name, Key: key, ETag: o.etag, ChecksumType: o.checksumType}
	switch o.checksumAlg {
	case "CRC32":
		out.ChecksumCRC32 = o.checksum
	case "CRC32C":
		out.ChecksumCRC32C = o.checksum
	case "CRC64NVME":
		out.ChecksumCRC64NVME = o.checksum
	case "SHA1":
		out.ChecksumSHA1 = o.checksum
	case "SHA256":
		out.ChecksumSHA256 = o.checksum
	}
	return xmlResponse(http.StatusOK, out), nil
}

func (s *Server) s3AbortMultipartUpload(r *request, name, key string) *APIError {
	b, _, e := s.s3Upload(r, name, key)
	if e != nil {
		return e
	}
	s.s3AbortLocked(b, r.http.URL.Query().Get("uploadId"))
	return nil
}

// s3AbortLocked drops an upload and gives its parts' bytes back. s.mu held.
func (s *Server) s3AbortLocked(b *bucket, id string) {
	if u, ok := b.uploads[id]; ok {
		for _, p := range u.parts {
			s.s3.bytes -= int64(len(p.data))
		}
		delete(b.uploads, id)
	}
}
