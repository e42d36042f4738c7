// Command fn is the checkpoint/restore test's function: a provided-runtime
// bootstrap built with aws-lambda-go. Init draws a random token and fills
// memory with a pattern; every invoke returns the token, the invoke count
// and whether the pattern is intact, so a restored copy proves its memory
// came back from the image.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type response struct {
	Token   string `json:"token"`
	Invokes int    `json:"invokes"`
	Intact  bool   `json:"intact"`
	PID     int    `json:"pid"`
}

func main() {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	// 8 MiB of state set during init.
	state := make([]byte, 8<<20)
	for i := range state {
		state[i] = byte(i * 7)
	}
	invokes := 0
	lambda.Start(func(ctx context.Context) (response, error) {
		invokes++
		intact := true
		for i := range state {
			if state[i] != byte(i*7) {
				intact = false
				break
			}
		}
		return response{Token: token, Invokes: invokes, Intact: intact, PID: os.Getpid()}, nil
	})
}
