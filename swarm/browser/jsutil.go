//go:build js && wasm

package browser

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"
)

// ErrJS wraps an exception JavaScript threw or a promise it rejected.
var ErrJS = errors.New("swarm/browser: javascript")

// await waits for promise p to settle. When ctx ends first it returns
// ctx.Err() at once; the callbacks are released when p settles later.
// It must not run on the goroutine of a js.Func callback (it would stall
// the event loop that settles p).
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1) // exactly one of then and catch runs, once
	then := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: arg0(args)}
		return nil
	})
	catch := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{err: jsError(arg0(args))}
		return nil
	})
	release := func() { then.Release(); catch.Release() }
	if err := try(func() { p.Call("then", then, catch) }); err != nil {
		release()
		return js.Undefined(), err
	}
	select {
	case r := <-ch:
		release()
		return r.v, r.err
	case <-ctx.Done():
		go func() { <-ch; release() }()
		return js.Undefined(), ctx.Err()
	}
}

func arg0(args []js.Value) js.Value {
	if len(args) == 0 {
		return js.Undefined()
	}
	return args[0]
}

// jsError turns a thrown or rejected JavaScript value into an error.
func jsError(v js.Value) error {
	msg := "undefined"
	if v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString {
		msg = v.Get("name").String() + ": " + v.Get("message").String()
	} else if v.Type() != js.TypeUndefined {
		msg = v.String()
	}
	return fmt.Errorf("%w: %s", ErrJS, msg)
}

// try runs f, turning an exception JavaScript throws in it (a panic of
// syscall/js) into an error.
func try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok {
				err = jsError(e.Value)
				return
			}
			err = fmt.Errorf("%w: %v", ErrJS, r)
		}
	}()
	f()
	return nil
}

// mark sets a User Timing mark (performance.mark), so that start-up can be
// measured step by step in the page; it does nothing where there is none.
func mark(name string) {
	_ = try(func() {
		if p := js.Global().Get("performance"); p.Type() == js.TypeObject && p.Get("mark").Type() == js.TypeFunction {
			p.Call("mark", name)
		}
	})
}
