package frontend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ignis-run/ignis/internal/api"
)

// codePathPrefix is the only route served without SigV4: GetFunction's
// Code.Location, like S3's presigned URL, carries its own expiring token.
const codePathPrefix = "/_ignis/code/"

// codeToken is hex(HMAC-SHA256(codeKey, key "\n" expires)).
func (f *Frontend) codeToken(key string, expires int64) string {
	m := hmac.New(sha256.New, f.codeKey)
	m.Write([]byte(key + "\n" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// codeURL is the download URL of code package key (hex SHA-256), on the
// host the client used to reach us.
func (f *Frontend) codeURL(r *http.Request, key string) string {
	expires := f.cfg.Clock.Now().Add(f.cfg.CodeURLTTL).Unix()
	q := url.Values{}
	q.Set("Expires", strconv.FormatInt(expires, 10))
	q.Set("Signature", f.codeToken(key, expires))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + codePathPrefix + key + "?" + q.Encode()
}

// downloadCode serves GET /_ignis/code/{key}?Expires=&Signature=.
func (f *Frontend) downloadCode(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	denied := newAWSError(http.StatusForbidden, "AccessDenied", "Request has expired or the signature does not match")
	if err != nil || f.cfg.Clock.Now().Unix() > expires {
		return denied
	}
	if !hmac.Equal([]byte(q.Get("Signature")), []byte(f.codeToken(key, expires))) {
		return denied
	}
	rc, size, err := f.reg.OpenCode(r.Context(), key)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		f.log.WarnContext(r.Context(), "code download interrupted", "key", key, "err", err)
	}
	return nil
}

// logs passes CloudWatch Logs requests (already SigV4-verified with service
// "logs") to the configured handler.
func (f *Frontend) logs(w http.ResponseWriter, r *http.Request) error {
	if !isLogsRequest(r) {
		return newAWSError(http.StatusNotFound, api.ErrUnknownOperation, "Unknown operation %s %s (X-Amz-Target %q)", r.Method, r.URL.Path, r.Header.Get("X-Amz-Target"))
	}
	if f.cfg.Logs == nil {
		return newAWSError(http.StatusNotImplemented, api.ErrService, "CloudWatch Logs API is not enabled on this Ignis server")
	}
	f.cfg.Logs.ServeHTTP(w, r)
	return nil
}
