package frontend

// CORS of function URLs, from the URL's Cors configuration, as Lambda
// handles it: a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered here without invoking the
// function; other responses get Access-Control-* headers when the request's
// Origin is allowed, replacing any the function set. Without a Cors
// configuration nothing is added and OPTIONS reaches the function.

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ignis-run/ignis/internal/registry"
)

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// originAllowed reports whether origin matches one of allowed ("*" matches
// all; origins compare case-insensitively).
func originAllowed(origin string, allowed []string) bool {
	if origin == "" {
		return false
	}
	return slices.ContainsFunc(allowed, func(a string) bool { return a == "*" || strings.EqualFold(a, origin) })
}

// writePreflight answers a preflight request: 200, with the allowed
// methods, headers and max age when the origin is allowed, and no CORS
// headers (so the browser refuses) when it is not.
func writePreflight(w http.ResponseWriter, r *http.Request, cors *registry.URLCors) {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if originAllowed(origin, cors.AllowOrigins) {
		h.Set("Access-Control-Allow-Origin", origin)
		if len(cors.AllowMethods) > 0 {
			h.Set("Access-Control-Allow-Methods", strings.Join(cors.AllowMethods, ","))
		}
		switch {
		case slices.Contains(cors.AllowHeaders, "*"):
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
		case len(cors.AllowHeaders) > 0:
			h.Set("Access-Control-Allow-Headers", strings.Join(cors.AllowHeaders, ","))
		}
		if cors.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(cors.MaxAge))
		}
		if cors.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// addCorsHeaders replaces the CORS headers of a response to r.
func addCorsHeaders(h http.Header, r *http.Request, cors *registry.URLCors) {
	if cors == nil {
		return
	}
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	origin := r.Header.Get("Origin")
	if !originAllowed(origin, cors.AllowOrigins) {
		return
	}
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Origin", origin)
	if len(cors.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(cors.ExposeHeaders, ","))
	}
	if cors.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}
