// Command loadgen is the test cluster's load generator: it burns
// MILLICORES of CPU (duty-cycled in 10 ms slices) and holds MEBIBYTES of
// touched memory until it is stopped. With -control FILE it re-reads the
// millicores from FILE every second (a hostPath the test writes), so a
// test can turn the load up and down without replacing pods.
//
//	loadgen -millicores 200 -mebibytes 64 [-control /ctl/millicores]
package main

import (
	"flag"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	milli := flag.Int("millicores", 100, "CPU to burn, in millicores (at most 1000 per worker)")
	mib := flag.Int("mebibytes", 16, "memory to hold, in MiB")
	workers := flag.Int("workers", 0, "burning goroutines; default enough for -millicores")
	control := flag.String("control", "", "file holding the millicores to burn, re-read every second")
	flag.Parse()

	hold := make([]byte, *mib<<20)
	for i := 0; i < len(hold); i += 4096 {
		hold[i] = 1 // touch every page so it is resident
	}

	n := *workers
	if n <= 0 {
		n = max(1, (*milli+999)/1000)
	}
	runtime.GOMAXPROCS(n) // no idle P for the scheduler to spin on
	var target atomic.Int64
	target.Store(int64(*milli))
	if *control != "" {
		go func() {
			for range time.Tick(time.Second) {
				b, err := os.ReadFile(*control)
				if err != nil {
					continue
				}
				if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v >= 0 {
					target.Store(int64(min(v, 1000*n)))
				}
			}
		}()
	}
	const slice = 10 * time.Millisecond
	for range n {
		go func() {
			for {
				// busy time per slice and worker
				per := time.Duration(target.Load()) * slice / time.Duration(1000*n)
				start := time.Now()
				for time.Since(start) < per {
				}
				time.Sleep(slice - per)
			}
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	runtime.KeepAlive(hold)
}
