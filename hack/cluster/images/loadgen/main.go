// Command loadgen is the test cluster's load generator: it burns
// MILLICORES of CPU (duty-cycled in 10 ms slices) and holds MEBIBYTES of
// touched memory until it is stopped.
//
//	loadgen -millicores 200 -mebibytes 64
package main

import (
	"flag"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	milli := flag.Int("millicores", 100, "CPU to burn, in millicores")
	mib := flag.Int("mebibytes", 16, "memory to hold, in MiB")
	flag.Parse()

	hold := make([]byte, *mib<<20)
	for i := 0; i < len(hold); i += 4096 {
		hold[i] = 1 // touch every page so it is resident
	}

	const slice = 10 * time.Millisecond
	workers := (*milli + 999) / 1000
	runtime.GOMAXPROCS(workers)                                        // no idle P for the scheduler to spin on
	per := time.Duration(*milli) * slice / time.Duration(1000*workers) // busy time per slice and worker
	for range workers {
		go func() {
			for {
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
