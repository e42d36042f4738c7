package gvisor

import (
	"context"
	"testing"
)

func TestSandbox_Destroy_Fast(t *testing.T) {
	d := newTestDriver(t)
	b := buildBins(t)
	sb, err := d.Create(context.Background(), fnSpec(t, b, "destroy-"+randomHex(4)))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(t, sb)
	c.hello()
	c.init()
	c.invoke("r1")
	destroy(t, sb)
}
