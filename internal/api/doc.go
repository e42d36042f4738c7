// Package api holds the AWS Lambda control-plane wire types (restJson1,
// PascalCase, case-sensitive member names) and the AWS error type names.
//
// It is pure data: no IO, no validation, no behaviour. The frontend decodes
// requests into these types and encodes responses from them; tests and
// clients may use them too. Field names and JSON keys follow
// spec/lambda-api.md §1.4 and §1.5 exactly.
package api
