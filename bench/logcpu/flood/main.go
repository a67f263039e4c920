// Command flood is an app for bench/logcpu: it answers every request with
// "ok" on $PORT and writes RATE MiB/s (default 50) of 4 KiB lines to its
// standard output.
package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	rate := 50
	if v, err := strconv.Atoi(os.Getenv("RATE")); err == nil && v > 0 {
		rate = v
	}
	line := []byte(strings.Repeat("x", 4095) + "\n")
	perTick := rate * 256 / 100 // 4 KiB lines per 10 ms
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			for range perTick {
				os.Stdout.Write(line) //nolint:errcheck // a load generator: a lost line changes nothing
			}
		}
	}()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), h); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
