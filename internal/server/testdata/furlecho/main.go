// Command furlecho is an aws-lambda-go function behind a function URL, used
// by the server's function URL tests. It decodes the event with
// aws-lambda-go's own type, so the tests see what real code sees:
//
//	/echo      200, the decoded event as JSON
//	/binary    200 application/octet-stream, the request body's bytes
//	/redirect  302 to /next with two cookies and a header
//	/fail      a function error
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	switch req.RawPath {
	case "/binary":
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(req.Body)
			if err != nil {
				return events.LambdaFunctionURLResponse{}, err
			}
			body = b
		}
		return events.LambdaFunctionURLResponse{
			StatusCode:      http.StatusOK,
			Headers:         map[string]string{"Content-Type": "application/octet-stream"},
			Body:            base64.StdEncoding.EncodeToString(body),
			IsBase64Encoded: true,
		}, nil
	case "/redirect":
		return events.LambdaFunctionURLResponse{
			StatusCode: http.StatusFound,
			Headers:    map[string]string{"Location": "/next", "X-Furl": "redirected"},
			Cookies:    []string{"session=abc; Path=/; HttpOnly", "theme=dark"},
		}, nil
	case "/fail":
		return events.LambdaFunctionURLResponse{}, errors.New("furlecho was asked to fail")
	}
	b, err := json.Marshal(req)
	if err != nil {
		return events.LambdaFunctionURLResponse{}, err
	}
	return events.LambdaFunctionURLResponse{StatusCode: http.StatusOK, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}, nil
}

func main() { lambda.Start(handle) }
