// Command loadgen is the test cluster's load generator: it burns
// MILLICORES of CPU (duty-cycled in 10 ms slices) and holds MEBIBYTES of
// touched memory until it is stopped. With -control FILE it re-reads the
// millicores from FILE every second (a hostPath the test writes), so a
// test can turn the load up and down without replacing pods. With
// -child-mebibytes N it starts, every -child-every, a child process (itself
// again) that touches N MiB and holds them: past the container's memory
// limit the kernel OOM-kills the child, and the container runs on.
//
//	loadgen -millicores 200 -mebibytes 64 [-control /ctl/millicores] [-child-mebibytes 96 -child-every 20s]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
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
	childMiB := flag.Int("child-mebibytes", 0, "memory a child process touches every -child-every (0: no child)")
	childEvery := flag.Duration("child-every", 20*time.Second, "how often a child is started")
	hog := flag.Int("hog", 0, "(the child) touch this many MiB and hold them")
	flag.Parse()

	if *hog > 0 {
		b := make([]byte, *hog<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		time.Sleep(time.Hour)
		runtime.KeepAlive(b)
		return
	}
	if *childMiB > 0 {
		go func() {
			for {
				c := exec.Command("/proc/self/exe", "-hog", strconv.Itoa(*childMiB), "-millicores", "0")
				c.Stdout, c.Stderr = os.Stdout, os.Stderr
				err := c.Run()
				fmt.Fprintf(os.Stderr, "loadgen: child touching %d MiB ended: %v\n", *childMiB, err)
				time.Sleep(*childEvery)
			}
		}()
	}

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
