package registry

// Function URL configurations (Create/Get/Update/Delete/List
// FunctionUrlConfig, spec §1.4) and LookupFunctionURL, which maps the URL id
// of every function URL request to its configuration.
//
// Two buckets (store.go):
//
//	ignis_function_urls     NAME.QUALIFIER → URLConfig (the truth; =LATEST for the unqualified function)
//	ignis_function_url_ids  URLID          → urlIndex  (where the URL id points)
//
// Create claims the id first (a KV create: two configs can never share an
// id), then creates the config; Delete removes the config first, then the
// id. A crash between the two steps leaves an id entry whose config is
// missing or carries another id, which LookupFunctionURL treats as absent:
// the id index is a hint checked against the config on every read.
//
// Like event invoke configs, a config remembers the Created time of its
// function, so one left behind by a crash during DeleteFunction is never
// inherited by a function later created under the same name.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ignis-run/ignis/internal/errdefs"
)

// Function URL enums (the model's FunctionUrlAuthType and InvokeMode).
const (
	URLAuthNone = "NONE"
	URLAuthIAM  = "AWS_IAM"

	URLInvokeBuffered = "BUFFERED"
	URLInvokeStream   = "RESPONSE_STREAM"

	// URLIDLength is the length of a URL id: lowercase letters and digits,
	// as Lambda's.
	URLIDLength = 32

	// Limits of the model's Cors shape.
	maxCorsHeaders = 100
	maxCorsHeader  = 1024
	maxCorsMethods = 6
	maxCorsOrigins = 100
	maxCorsOrigin  = 253
	maxCorsMaxAge  = 86400
)

// URLCors is the CORS configuration of a function URL.
type URLCors struct {
	AllowCredentials bool     `json:"allowCredentials,omitempty"`
	AllowHeaders     []string `json:"allowHeaders,omitempty"`
	AllowMethods     []string `json:"allowMethods,omitempty"`
	AllowOrigins     []string `json:"allowOrigins,omitempty"`
	ExposeHeaders    []string `json:"exposeHeaders,omitempty"`
	MaxAge           int      `json:"maxAge,omitempty"`
}

// URLConfig is the function URL of a function (Qualifier "") or of one of
// its aliases.
type URLConfig struct {
	// URLID is the URL's host label: URLIDLength random lowercase letters
	// and digits, fixed for the URL's life.
	URLID        string `json:"urlId"`
	FunctionName string `json:"functionName"`
	// Qualifier is an alias name, or "" for the unqualified function
	// ($LATEST).
	Qualifier  string    `json:"qualifier,omitempty"`
	AuthType   string    `json:"authType"`
	Cors       *URLCors  `json:"cors,omitempty"`
	InvokeMode string    `json:"invokeMode"`
	Created    time.Time `json:"created"`
	Modified   time.Time `json:"modified"`
	// FunctionCreated is the Created time of the function the config
	// belongs to.
	FunctionCreated time.Time `json:"functionCreated"`
}

// URLConfigInput is the body of Create (nil: default) and Update (nil:
// unchanged). A Cors given replaces the whole CORS configuration.
type URLConfigInput struct {
	AuthType   *string
	Cors       *URLCors
	InvokeMode *string
}

// urlIndex is the value under a URL id.
type urlIndex struct {
	FunctionName string `json:"functionName"`
	Qualifier    string `json:"qualifier,omitempty"`
}

var (
	urlIDRE = regexp.MustCompile(`^[a-z0-9]{32}$`)
	// urlQualifierRE is the model's FunctionUrlQualifier without its
	// look-ahead (not all digits), which urlTarget checks separately.
	urlQualifierRE = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,128}$`)
	corsMethods    = []string{"*", "GET", "PUT", "HEAD", "POST", "PATCH", "DELETE"}
)

// ValidURLID reports whether s has the form of a URL id.
func ValidURLID(s string) bool { return urlIDRE.MatchString(s) }

// newURLID returns a fresh random URL id.
func newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	id := make([]byte, 0, URLIDLength)
	var buf [64]byte
	for len(id) < URLIDLength {
		_, _ = rand.Read(buf[:]) // never fails (crypto/rand)
		for _, b := range buf {
			// 252 = 7·36: rejecting larger bytes keeps every letter
			// equally likely.
			if b < 252 && len(id) < URLIDLength {
				id = append(id, alphabet[b%36])
			}
		}
	}
	return string(id)
}

func urlConfigKey(name, qualifier string) string {
	if qualifier == "" {
		qualifier = latestKey
	}
	return name + "." + qualifier
}

// urlTarget parses fn and qualifier for a URL operation and checks that
// the function (and the alias) exist. The returned ref's Qualifier is an
// alias name or "" ($LATEST and no qualifier name the same URL).
func (r *Registry) urlTarget(ctx context.Context, fn, qualifier string) (FunctionRef, *functionRecord, error) {
	ref, err := ParseFunctionRef(fn, qualifier)
	if err != nil {
		return FunctionRef{}, nil, err
	}
	if q := ref.Qualifier; q != "" && q != Latest && (!urlQualifierRE.MatchString(q) || isVersion(q)) {
		return FunctionRef{}, nil, constraint(truncate(q, 160), "qualifier",
			`Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)|(^\$LATEST$)`)
	}
	if ref.Qualifier == Latest {
		ref.Qualifier = ""
	}
	rec, _, err := r.loadFunction(ctx, ref.Name)
	if err != nil {
		return FunctionRef{}, nil, err
	}
	if ref.Qualifier != "" {
		if _, err := r.getAlias(ctx, ref.Name, ref.Qualifier); err != nil {
			return FunctionRef{}, nil, err
		}
	}
	return ref, rec, nil
}

// URLFunctionArn is the FunctionArn of c: qualified for an alias.
func (r *Registry) URLFunctionArn(c *URLConfig) string {
	if c.Qualifier == "" {
		return r.cfg.ARNs.Function(c.FunctionName)
	}
	return r.cfg.ARNs.Qualified(c.FunctionName, c.Qualifier)
}

func (r *Registry) urlConfigNotFound() error {
	return notFoundf("The resource you requested does not exist.")
}

// loadURLConfig returns the stored config of ref and its revision; found
// is false when there is none (or only a stale one of a deleted function,
// whose revision is returned so that a create can replace it).
func (r *Registry) loadURLConfig(ctx context.Context, ref FunctionRef, rec *functionRecord) (c URLConfig, rev uint64, found bool, err error) {
	rev, err = getJSON(ctx, r.s.urls, urlConfigKey(ref.Name, ref.Qualifier), &c)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return URLConfig{}, 0, false, nil
	}
	if err != nil {
		return URLConfig{}, 0, false, fmt.Errorf("reading function url config of %s: %w", urlConfigKey(ref.Name, ref.Qualifier), err)
	}
	if !c.FunctionCreated.Equal(rec.Created) {
		return c, rev, false, nil
	}
	return c, rev, true, nil
}

// validateURLConfig checks the enums and the CORS limits of c.
func validateURLConfig(c *URLConfig) error {
	if c.AuthType != URLAuthNone && c.AuthType != URLAuthIAM {
		return constraint(truncate(c.AuthType, 100), "authType", "Member must satisfy enum value set: [NONE, AWS_IAM]")
	}
	switch c.InvokeMode {
	case URLInvokeBuffered:
	case URLInvokeStream:
		return invalidf("InvokeMode RESPONSE_STREAM is not supported by Ignis; use BUFFERED")
	default:
		return constraint(truncate(c.InvokeMode, 100), "invokeMode", "Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]")
	}
	cors := c.Cors
	if cors == nil {
		return nil
	}
	lists := []struct {
		field     string
		items     []string
		maxItems  int
		minLen    int
		maxLen    int
		lenMember string
	}{
		{"cors.allowHeaders", cors.AllowHeaders, maxCorsHeaders, 0, maxCorsHeader, "1024"},
		{"cors.exposeHeaders", cors.ExposeHeaders, maxCorsHeaders, 0, maxCorsHeader, "1024"},
		{"cors.allowMethods", cors.AllowMethods, maxCorsMethods, 0, 6, "6"},
		{"cors.allowOrigins", cors.AllowOrigins, maxCorsOrigins, 1, maxCorsOrigin, "253"},
	}
	for _, l := range lists {
		if len(l.items) > l.maxItems {
			return constraint(fmt.Sprintf("[%d items]", len(l.items)), l.field, fmt.Sprintf("Member must have length less than or equal to %d", l.maxItems))
		}
		for _, s := range l.items {
			if len(s) > l.maxLen || len(s) < l.minLen {
				return constraint(truncate(s, 100), l.field+".member", "Member must have length less than or equal to "+l.lenMember)
			}
			if strings.ContainsAny(s, "\r\n\x00") {
				return invalidf("%s must not contain control characters", l.field)
			}
		}
	}
	for _, m := range cors.AllowMethods {
		if !slices.Contains(corsMethods, strings.ToUpper(m)) {
			return invalidf("Invalid Cors AllowMethods value %s; use GET, PUT, HEAD, POST, PATCH, DELETE or *", truncate(m, 10))
		}
	}
	if cors.MaxAge < 0 || cors.MaxAge > maxCorsMaxAge {
		return constraint(cors.MaxAge, "cors.maxAge", "Member must have value between 0 and 86400")
	}
	return nil
}

// CreateFunctionURLConfig creates the function URL of fn (unqualified or
// an alias; not a version). errdefs.ErrAlreadyExists when it has one.
func (r *Registry) CreateFunctionURLConfig(ctx context.Context, fn, qualifier string, in URLConfigInput) (URLConfig, error) {
	ref, rec, err := r.urlTarget(ctx, fn, qualifier)
	if err != nil {
		return URLConfig{}, err
	}
	now := r.cfg.Clock.Now().UTC()
	c := URLConfig{
		FunctionName:    ref.Name,
		Qualifier:       ref.Qualifier,
		InvokeMode:      URLInvokeBuffered,
		Created:         now,
		Modified:        now,
		FunctionCreated: rec.Created,
		Cors:            in.Cors,
	}
	if in.AuthType == nil {
		return URLConfig{}, invalidf("1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null")
	}
	c.AuthType = *in.AuthType
	setIf(&c.InvokeMode, in.InvokeMode)
	if err := validateURLConfig(&c); err != nil {
		return URLConfig{}, err
	}
	old, rev, found, err := r.loadURLConfig(ctx, ref, rec)
	if err != nil {
		return URLConfig{}, err
	}
	if found {
		return URLConfig{}, r.urlConfigExists(&c)
	}
	if rev != 0 { // a stale config of an earlier function of this name
		if err := r.purgeURLConfig(ctx, &old); err != nil {
			return URLConfig{}, err
		}
	}
	// Claim an id; a collision of 32 random letters is all but impossible,
	// but the create makes it harmless anyway.
	for range casAttempts {
		c.URLID = newURLID()
		_, err = r.s.urlIDs.Create(ctx, c.URLID, mustJSON(urlIndex{FunctionName: c.FunctionName, Qualifier: c.Qualifier}))
		if !isRevisionMismatch(err) {
			break
		}
	}
	if err != nil {
		return URLConfig{}, fmt.Errorf("claiming a function url id: %w", err)
	}
	_, err = r.s.urls.Create(ctx, urlConfigKey(c.FunctionName, c.Qualifier), mustJSON(c))
	if err != nil {
		_ = r.s.urlIDs.Purge(ctx, c.URLID)
		r.invalidateURL(c.FunctionName, c.Qualifier, c.URLID)
		if isRevisionMismatch(err) {
			return URLConfig{}, r.urlConfigExists(&c)
		}
		return URLConfig{}, fmt.Errorf("writing function url config of %s: %w", urlConfigKey(c.FunctionName, c.Qualifier), err)
	}
	r.invalidateURL(c.FunctionName, c.Qualifier, c.URLID)
	r.log.InfoContext(ctx, "function url created", "function", c.FunctionName, "qualifier", c.Qualifier, "urlId", c.URLID, "authType", c.AuthType)
	return c, nil
}

func (r *Registry) urlConfigExists(c *URLConfig) error {
	return existsf("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", r.URLFunctionArn(c))
}

// GetFunctionURLConfig returns the function URL of fn at qualifier;
// errdefs.ErrNotFound when there is none.
func (r *Registry) GetFunctionURLConfig(ctx context.Context, fn, qualifier string) (URLConfig, error) {
	ref, rec, err := r.urlTarget(ctx, fn, qualifier)
	if err != nil {
		return URLConfig{}, err
	}
	c, _, found, err := r.loadURLConfig(ctx, ref, rec)
	if err != nil {
		return URLConfig{}, err
	}
	if !found {
		return URLConfig{}, r.urlConfigNotFound()
	}
	return c, nil
}

// UpdateFunctionURLConfig changes the fields given in in; the URL (its id)
// stays. errdefs.ErrNotFound when there is none.
func (r *Registry) UpdateFunctionURLConfig(ctx context.Context, fn, qualifier string, in URLConfigInput) (URLConfig, error) {
	ref, rec, err := r.urlTarget(ctx, fn, qualifier)
	if err != nil {
		return URLConfig{}, err
	}
	defer r.invalidateURL(ref.Name, ref.Qualifier, "")
	for range casAttempts {
		c, rev, found, err := r.loadURLConfig(ctx, ref, rec)
		if err != nil {
			return URLConfig{}, err
		}
		if !found {
			return URLConfig{}, r.urlConfigNotFound()
		}
		setIf(&c.AuthType, in.AuthType)
		setIf(&c.InvokeMode, in.InvokeMode)
		if in.Cors != nil {
			c.Cors = in.Cors
		}
		c.Modified = r.cfg.Clock.Now().UTC()
		if err := validateURLConfig(&c); err != nil {
			return URLConfig{}, err
		}
		_, err = r.s.urls.Update(ctx, urlConfigKey(ref.Name, ref.Qualifier), mustJSON(c), rev)
		if isRevisionMismatch(err) {
			continue
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return URLConfig{}, r.urlConfigNotFound()
		}
		if err != nil {
			return URLConfig{}, fmt.Errorf("writing function url config of %s: %w", urlConfigKey(ref.Name, ref.Qualifier), err)
		}
		r.log.InfoContext(ctx, "function url updated", "function", c.FunctionName, "qualifier", c.Qualifier, "urlId", c.URLID, "authType", c.AuthType)
		return c, nil
	}
	return URLConfig{}, conflictf("Too many concurrent updates of the function url config of %s; retry.", ref.Name)
}

// DeleteFunctionURLConfig deletes the function URL of fn at qualifier;
// errdefs.ErrNotFound when there is none.
func (r *Registry) DeleteFunctionURLConfig(ctx context.Context, fn, qualifier string) error {
	ref, rec, err := r.urlTarget(ctx, fn, qualifier)
	if err != nil {
		return err
	}
	c, _, found, err := r.loadURLConfig(ctx, ref, rec)
	if err != nil {
		return err
	}
	if !found {
		return r.urlConfigNotFound()
	}
	if err := r.purgeURLConfig(ctx, &c); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "function url deleted", "function", c.FunctionName, "qualifier", c.Qualifier, "urlId", c.URLID)
	return nil
}

// purgeURLConfig removes c and then its id entry (see the file comment
// for the order).
func (r *Registry) purgeURLConfig(ctx context.Context, c *URLConfig) error {
	defer r.invalidateURL(c.FunctionName, c.Qualifier, c.URLID)
	key := urlConfigKey(c.FunctionName, c.Qualifier)
	if err := r.s.urls.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("deleting function url config of %s: %w", key, err)
	}
	if c.URLID == "" {
		return nil
	}
	if err := r.s.urlIDs.Purge(ctx, c.URLID); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("deleting function url id %s: %w", c.URLID, err)
	}
	return nil
}

// purgeURLConfigs removes every URL config stored under name (DeleteFunction).
func (r *Registry) purgeURLConfigs(ctx context.Context, name string) error {
	keys, err := keysWithPrefix(ctx, r.s.urls, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		var c URLConfig
		if _, err := getJSON(ctx, r.s.urls, k, &c); errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if err := r.purgeURLConfig(ctx, &c); err != nil {
			return err
		}
		r.log.InfoContext(ctx, "function url deleted with its function", "function", c.FunctionName, "qualifier", c.Qualifier, "urlId", c.URLID)
	}
	return nil
}

// deleteAliasURLConfig removes the URL config of an alias being deleted,
// as Lambda deletes an alias's function URL with the alias.
func (r *Registry) deleteAliasURLConfig(ctx context.Context, name, alias string) error {
	var c URLConfig
	_, err := getJSON(ctx, r.s.urls, urlConfigKey(name, alias), &c)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.purgeURLConfig(ctx, &c); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "function url deleted with its alias", "function", name, "alias", alias, "urlId", c.URLID)
	return nil
}

// ListFunctionURLConfigs lists the function URLs of fn (unqualified and
// every alias), in pages of at most MaxPageSize.
func (r *Registry) ListFunctionURLConfigs(ctx context.Context, fn string, in ListInput) ([]URLConfig, string, error) {
	name, err := unqualified(fn)
	if err != nil {
		return nil, "", err
	}
	rec, _, err := r.loadFunction(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return listFunctionEntries(ctx, r.s.urls, name, rec, in, func(c *URLConfig) time.Time { return c.FunctionCreated })
}

// LookupFunctionURL returns the config of the function URL with id, for
// serving a request to it; errdefs.ErrNotFound when no live URL has that
// id (malformed, deleted, or its function or alias gone). It reads from
// the same in-memory cache as Resolve.
func (r *Registry) LookupFunctionURL(ctx context.Context, id string) (URLConfig, error) {
	if !ValidURLID(id) {
		return URLConfig{}, r.urlConfigNotFound()
	}
	idx, err := cachedJSON(ctx, r.cache.urlIDs, r.s.urlIDs, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return URLConfig{}, r.urlConfigNotFound()
	}
	if err != nil {
		return URLConfig{}, fmt.Errorf("reading function url id %s: %w", id, err)
	}
	c, err := cachedJSON(ctx, r.cache.urls, r.s.urls, urlConfigKey(idx.FunctionName, idx.Qualifier))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return URLConfig{}, r.urlConfigNotFound()
	}
	if err != nil {
		return URLConfig{}, fmt.Errorf("reading function url config of %s: %w", urlConfigKey(idx.FunctionName, idx.Qualifier), err)
	}
	if c.URLID != id {
		return URLConfig{}, r.urlConfigNotFound()
	}
	rec, err := r.cachedFunction(ctx, c.FunctionName)
	if errdefs.IsNotFound(err) || (err == nil && !c.FunctionCreated.Equal(rec.Created)) {
		return URLConfig{}, r.urlConfigNotFound()
	}
	if err != nil {
		return URLConfig{}, err
	}
	if c.Cors != nil {
		// The cached value is shared: hand out a copy.
		cors := *c.Cors
		cors.AllowHeaders = slices.Clone(cors.AllowHeaders)
		cors.AllowMethods = slices.Clone(cors.AllowMethods)
		cors.AllowOrigins = slices.Clone(cors.AllowOrigins)
		cors.ExposeHeaders = slices.Clone(cors.ExposeHeaders)
		c.Cors = &cors
	}
	return c, nil
}
