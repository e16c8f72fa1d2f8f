package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clkTck is the kernel's USER_HZ: /proc/PID/stat's utime and stime are in
// these ticks (100 on every Linux this runs on).
const clkTck = 100

// cpuSeconds is utime + stime of pid from /proc/PID/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return math.NaN()
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return math.NaN()
	}
	u, _ := strconv.ParseFloat(f[11], 64) // field 14
	k, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (u + k) / clkTck
}

// statusBytes reads a "VmXXX: N kB" line of /proc/PID/status, in bytes.
func statusBytes(pid int, key string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return math.NaN()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return math.NaN()
			}
			return kb * 1024
		}
	}
	return math.NaN()
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) float64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return float64(n)
}

// rssSampler samples the summed VmRSS of pids every period.
type rssSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    chan struct{}
	done    chan struct{}
}

func sampleRSS(pids []int, period time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			var sum float64
			for _, p := range pids {
				sum += statusBytes(p, "VmRSS")
			}
			s.mu.Lock()
			s.samples = append(s.samples, sum)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// settled ends the sampling and returns the mean of the second half of the
// samples.
func (s *rssSampler) settled() float64 {
	close(s.stop)
	<-s.done
	h := s.samples[len(s.samples)/2:]
	var sum float64
	for _, v := range h {
		sum += v
	}
	return sum / float64(len(h))
}

var httpClient = &http.Client{Timeout: 2 * time.Minute,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback peers' self-signed endpoints

// scrapeValue returns the sum of the samples of metric name on a
// Prometheus text exposition at url.
func scrapeValue(u, name string) float64 {
	resp, err := httpClient.Get(u)
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	found, sum := false, 0.0
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) {
			continue
		}
		rest := l[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if len(f) >= 3 && !strings.HasSuffix(f[len(f)-2], "}") && strings.Contains(l, "}") {
			v, err = strconv.ParseFloat(f[len(f)-2], 64) // a timestamp follows
		}
		if err == nil {
			found, sum = true, sum+v
		}
	}
	if !found {
		return math.NaN()
	}
	return sum
}

// question is one of the three PromQL questions, in one system's names.
type question struct {
	name  string
	query string
	rng   bool // a range query over the last 24 h at a 60 s step
}

type answer struct {
	median time.Duration
	series int
	err    error
}

// ask runs q against the PromQL API at base: one untimed run, then runs
// timed ones; the median wall time and the number of series answered.
func ask(base string, q question, runs int) answer {
	var times []time.Duration
	n := 0
	for i := 0; i <= runs; i++ {
		now := time.Now()
		v := url.Values{"query": {q.query}}
		path := "/api/v1/query"
		if q.rng {
			path = "/api/v1/query_range"
			v.Set("start", strconv.FormatInt(now.Add(-24*time.Hour).Unix(), 10))
			v.Set("end", strconv.FormatInt(now.Unix(), 10))
			v.Set("step", "60")
		} else {
			v.Set("time", strconv.FormatInt(now.Unix(), 10))
		}
		t0 := time.Now()
		resp, err := httpClient.PostForm(base+path, v)
		if err != nil {
			return answer{err: err}
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return answer{err: err}
		}
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
			return answer{err: fmt.Errorf("%s: %d %s %s", q.query, resp.StatusCode, r.Error, strings.TrimSpace(string(body[:min(len(body), 200)])))}
		}
		n = len(r.Data.Result)
		if i > 0 {
			times = append(times, d)
		}
	}
	slices.Sort(times)
	return answer{median: times[len(times)/2], series: n}
}

// countQuery is the value of an instant query's single sample, -1 if none.
func countQuery(base, q string) int {
	resp, err := httpClient.PostForm(base+"/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) != 1 {
		return -1
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return int(v)
}
