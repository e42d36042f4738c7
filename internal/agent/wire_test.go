package agent

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ignis-run/ignis/internal/agentproto"
)

// FuzzDecodeInvokeHeader checks the reflection-free Invoke decoder against
// encoding/json: whenever it accepts a header, it must decode it exactly
// as json.Unmarshal does.
func FuzzDecodeInvokeHeader(f *testing.F) {
	for _, inv := range []agentproto.Invoke{
		{RequestID: "00000000-0000-4000-8000-000000000000", DeadlineMs: 1700000000123, InvokedARN: "arn:aws:lambda:us-east-1:1:function:f"},
		{RequestID: "r", DeadlineMs: -5, InvokedARN: "a", TraceID: "Root=1-a;Sampled=1", ClientContext: `{"c":1}`,
			CognitoIdentity: `{"cognitoIdentityId":"i"}`, TenantID: "t", ContentType: "application/json"},
		{RequestID: "é<&>", ContentType: "text/plain"},
	} {
		b, _ := json.Marshal(inv)
		f.Add(b)
	}
	f.Add([]byte(` { "requestId" : "a" , "deadlineMs" : 0 } `))
	f.Add([]byte(`{"requestId":"a","RequestID":"b"}`))
	f.Fuzz(func(t *testing.T, h []byte) {
		var got agentproto.Invoke
		if !decodeInvokeHeader(h, &got, "arn") {
			return
		}
		var want agentproto.Invoke
		if err := json.Unmarshal(h, &want); err != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", h, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decoding %q (-json +fast):\n%s", h, diff)
		}
	})
}

func TestDecodeInvoke_AsAgentproto(t *testing.T) {
	inv := agentproto.Invoke{RequestID: "r1", DeadlineMs: 42, InvokedARN: "arn:x", TraceID: "Root=1", ClientContext: `{"a":"<b>"}`, Payload: []byte(`{"k":1}`)}
	var buf bytes.Buffer
	if err := agentproto.NewWriter(&buf).Invoke(inv); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(&buf)
	typ, body, err := fr.next()
	if err != nil || typ != agentproto.TypeInvoke {
		t.Fatalf("frame %v %v", typ, err)
	}
	var got agentproto.Invoke
	if err := decodeInvoke(body, &got, "arn:x"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(inv, got); diff != "" {
		t.Fatalf("(-sent +decoded):\n%s", diff)
	}
}
