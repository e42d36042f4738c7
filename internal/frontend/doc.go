// Package frontend serves the AWS-compatible HTTP API of Ignis: the Lambda
// control plane (spec/lambda-api.md §1), the Invoke route (through an
// Invoker), and CloudWatch Logs JSON requests (through a Logs handler).
//
// Every request goes through the same steps (frontend.go):
//
//	request id ─► body read (size limit → 413) ─► SigV4 check (sigv4.go, 403)
//	           ─► ServeMux route (routes.go) ─► operation handler ─► JSON or AWS error
//
// Operation handlers live one file per group (functions.go, versions.go,
// aliases.go, concurrency.go, account.go, tags.go, code.go, invoker.go).
// They decode with decode.go, call the registry, and encode api types.
//
// Function URLs: urlconfig.go serves their configuration operations;
// urlserve.go serves the URLs themselves (a Host of
// <url-id>.lambda-url.… or a /<url-id>/ path prefix), before the body limit
// and SigV4 step above, since a URL's AuthType decides whether to check a
// signature; urlevent.go builds the payload format 2.0 event and maps the
// function's result back; urlcors.go answers CORS. URLHandler serves
// function URLs alone, for a listener without the control plane.
//
// This package is the only place that maps errdefs classes to AWS error
// types and HTTP statuses (errors.go). The one unsigned route is the code
// download URL handed out in GetFunction's Code.Location, authenticated by
// an expiring HMAC token instead (code.go).
package frontend
