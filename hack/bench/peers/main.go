// Command peers is the peer benchmark behind hack/bench/peers.sh: one
// simulated cluster (internal/sim, kubelets over TLS with token
// authentication) loaded into a real etcd + kube-apiserver on loopback, then
// kubemon, metrics-server and Prometheus + kube-state-metrics (the real one,
// v2.13.0 from hack/peers/build.sh, measured with Prometheus as one peer),
// one after another, each discovering the cluster from the apiserver and
// scraping every simulated kubelet at the same interval, measured by their
// PIDs: CPU per cycle, peak and settled RSS, disk per day, series and the
// latency of three PromQL questions. It prints a table of ratios kubemon ÷ each
// peer and, as its last lines, one line per peer:
//
//	kubemon/metrics-server cpu=0.42 rss=0.80 disk=-
//	kubemon/prometheus cpu=… rss=… disk=…
//
//	peers run -nodes N -pods P -kubemon BIN -pki BIN -k8s-dir DIR -etcd BIN \
//	    -metrics-server BIN -prometheus BIN -ksm BIN [-interval 15s] [-duration 1h]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kubemon/kubemon/internal/model"
)

type options struct {
	nodes, pods                int
	interval, duration, warmup time.Duration
	work                       string
	kubemon, pki, k8sDir, etcd string
	metricsServer, prom, ksm   string
	peers                      string
	kubemonArgs                string
	queryRuns                  int
	keep                       bool
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("peers: ")
	if len(os.Args) >= 2 && os.Args[1] == "cluster" {
		if err := clusterOnly(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: peers run -nodes N -pods P …\n       peers cluster -nodes N -pods P -work DIR …")
		os.Exit(2)
	}
	var o options
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	clusterFlags(fs, &o)
	fs.DurationVar(&o.interval, "interval", 15*time.Second, "scrape interval of every peer")
	fs.DurationVar(&o.duration, "duration", time.Hour, "measured time per peer (after its warm-up)")
	fs.DurationVar(&o.warmup, "warmup", 0, "time between a peer's readiness and its measurement (0: 3 intervals)")
	fs.StringVar(&o.work, "work", "", "work directory (default: a new one under $TMPDIR, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.kubemon, "kubemon", "", "kubemon binary")
	fs.StringVar(&o.metricsServer, "metrics-server", "", "metrics-server binary")
	fs.StringVar(&o.prom, "prometheus", "/usr/bin/prometheus", "prometheus binary")
	fs.StringVar(&o.ksm, "ksm", "", "kube-state-metrics binary (hack/peers/build.sh kube-state-metrics; the prometheus peer needs it)")
	fs.StringVar(&o.peers, "peers", "kubemon,metrics-server,prometheus", "peers to run, in order")
	fs.StringVar(&o.kubemonArgs, "kubemon-args", "", "more flags for kubemon serve, separated by spaces (e.g. a --metrics-drop set; default: none, its defaults)")
	fs.IntVar(&o.queryRuns, "query-runs", 5, "timed runs of each question (after one untimed)")
	_ = fs.Parse(os.Args[2:])
	if o.warmup == 0 {
		o.warmup = 3 * o.interval
	}
	if strings.Contains(","+strings.ReplaceAll(o.peers, " ", "")+",", ",prometheus,") && o.ksm == "" {
		log.Fatal("the prometheus peer is Prometheus + kube-state-metrics: -ksm BIN (hack/peers/build.sh kube-state-metrics)")
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// result is one peer's measurement.
type result struct {
	name        string
	cpuPerCycle float64 // seconds of CPU per interval
	rssPeak     float64 // bytes, VmHWM (summed over the peer's processes)
	rssSettled  float64 // bytes, mean VmRSS over the second half of the window
	diskPerDay  float64 // bytes; NaN: keeps no history
	series      float64 // NaN: none
	answers     []answer
	questions   []question
	measuredFor time.Duration
	processes   string
	nodesSeen   int
}

func run(o options) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if o.work == "" {
		d, err := os.MkdirTemp("", "kubemon-peers-")
		if err != nil {
			return err
		}
		o.work = d
		if !o.keep {
			defer os.RemoveAll(d)
		}
	}
	log.Printf("%d nodes × %d pods, interval %s, warm-up %s, %s measured per peer; work dir %s",
		o.nodes, o.pods, o.interval, o.warmup, o.duration, o.work)
	c, err := upCluster(ctx, o)
	defer c.stop()
	if err != nil {
		return err
	}
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go c.keepPodsInSync(sctx)

	var results []*result
	for _, name := range strings.Split(o.peers, ",") {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := runPeer(ctx, o, c, strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results = append(results, r)
		printResult(r)
	}
	report(o, results)
	return nil
}

// peer is how one system is started and asked.
type peer struct {
	procs     []*proc
	dataDir   string // "" if it keeps no history
	metrics   string // a /metrics URL with prometheus_tsdb_head_series, or ""
	promql    string // base URL of its PromQL API, or ""
	questions []question
	ready     func() bool
	// nodes counts the nodes it has data of now.
	nodes func() int
}

func (p *peer) stop() {
	for i := len(p.procs) - 1; i >= 0; i-- {
		p.procs[i].stop()
	}
}

// theQuestions names the pod and namespace the questions are about, the
// same for every peer: the pod is chosen once (a StatefulSet's, whose name
// outlives its generations, else the oldest), the namespace is the one with
// the most pods.
func theQuestions(c *cluster) (ns, pod, busiest string) {
	pods := c.sim.PodObjects(time.Now())
	count := map[string]int{}
	for _, p := range pods {
		count[p.Namespace]++
	}
	for n, k := range count {
		if busiest == "" || k > count[busiest] || (k == count[busiest] && n < busiest) {
			busiest = n
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.qpod == "" {
		best := -1
		for i, p := range pods {
			sts := len(p.OwnerReferences) > 0 && p.OwnerReferences[0].Kind == "StatefulSet"
			if best < 0 || (sts && (pods[best].OwnerReferences[0].Kind != "StatefulSet" || p.CreationTimestamp.Before(&pods[best].CreationTimestamp))) ||
				(!sts && pods[best].OwnerReferences[0].Kind != "StatefulSet" && p.CreationTimestamp.Before(&pods[best].CreationTimestamp)) {
				best = i
			}
		}
		c.qns, c.qpod = pods[best].Namespace, pods[best].Name
	}
	return c.qns, c.qpod, busiest
}

func startPeer(o options, c *cluster, name string) (*peer, error) {
	dir := filepath.Join(o.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ns, pod, busy := theQuestions(c)
	p := &peer{}
	switch name {
	case "kubemon":
		port := freePort()
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		p.dataDir = filepath.Join(dir, "data")
		args := append([]string{"serve", "--kubeconfig", c.kubeconfig,
			"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", p.dataDir, "--interval", o.interval.String()},
			strings.Fields(o.kubemonArgs)...)
		pr, err := start(o.work, "kubemon", o.kubemon, args...)
		if err != nil {
			return nil, err
		}
		p.procs = []*proc{pr}
		p.metrics, p.promql = base+"/metrics", base
		p.ready = func() bool { return httpOK(httpClient, base+"/readyz") }
		p.nodes = func() int { return countQuery(base, "count("+model.PromName(model.LevelNode, model.CPUUsageRate)+")") }
		podCPU := model.PromName(model.LevelPod, model.CPUUsageRate)
		p.questions = []question{
			{"pod CPU 24h", fmt.Sprintf(`%s{namespace=%q,pod=%q}`, podCPU, ns, pod), true},
			{"top 10 pods", fmt.Sprintf(`topk(10, %s{namespace=%q})`, podCPU, busy), false},
			{"cluster CPU", model.PromName(model.LevelCluster, model.CPUUtilization), false},
		}
	case "metrics-server":
		if o.metricsServer == "" {
			return nil, fmt.Errorf("no metrics-server binary (-metrics-server)")
		}
		port := freePort()
		pr, err := start(o.work, "metrics-server", o.metricsServer,
			"--kubeconfig", c.kubeconfig, "--authentication-kubeconfig", c.kubeconfig, "--authorization-kubeconfig", c.kubeconfig,
			"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port), "--cert-dir", dir,
			"--kubelet-preferred-address-types", "InternalIP", "--kubelet-use-node-status-port",
			"--kubelet-certificate-authority", c.ca, "--metric-resolution", o.interval.String())
		if err != nil {
			return nil, err
		}
		p.procs = []*proc{pr}
		base := fmt.Sprintf("https://127.0.0.1:%d", port)
		p.ready = func() bool { return httpOK(httpClient, base+"/readyz") }
		p.nodes = func() int {
			req, _ := http.NewRequest(http.MethodGet, base+"/apis/metrics.k8s.io/v1beta1/nodes", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := httpClient.Do(req)
			if err != nil {
				return -1
			}
			defer resp.Body.Close()
			var l struct {
				Items []json.RawMessage `json:"items"`
			}
			if json.NewDecoder(resp.Body).Decode(&l) != nil {
				return -1
			}
			return len(l.Items)
		}
	case "prometheus":
		if o.ksm == "" {
			return nil, fmt.Errorf("no kube-state-metrics binary (-ksm; hack/peers/build.sh kube-state-metrics)")
		}
		// kube-state-metrics with its default resources (as kube-prometheus
		// runs it), against the apiserver with the peers' token, on
		// loopback; measured with Prometheus as one peer.
		kport, pport := freePort(), freePort()
		ksmAddr := fmt.Sprintf("127.0.0.1:%d", kport)
		kp, err := start(o.work, "kube-state-metrics", o.ksm, "--kubeconfig", c.kubeconfig,
			"--host", "127.0.0.1", "--port", fmt.Sprint(kport), "--telemetry-host", "127.0.0.1", "--telemetry-port", fmt.Sprint(freePort()))
		if err != nil {
			return nil, err
		}
		p.procs = append(p.procs, kp)
		cfg := filepath.Join(dir, "prometheus.yml")
		kubeSD := hasKubernetesSD(o.prom)
		if !kubeSD {
			log.Printf("%s has no Kubernetes service discovery: the kubelets are found by HTTP service discovery of the apiserver's Nodes (%s)", o.prom, c.sdURL)
		}
		if err := os.WriteFile(cfg, []byte(promConfig(o.interval, c, ksmAddr, kubeSD, c.sdURL)), 0o644); err != nil {
			return nil, err
		}
		p.dataDir = filepath.Join(dir, "data")
		pp, err := start(o.work, "prometheus", o.prom, "--config.file", cfg, "--storage.tsdb.path", p.dataDir,
			"--web.listen-address", fmt.Sprintf("127.0.0.1:%d", pport))
		if err != nil {
			p.stop()
			return nil, err
		}
		p.procs = append(p.procs, pp)
		base := fmt.Sprintf("http://127.0.0.1:%d", pport)
		p.metrics, p.promql = base+"/metrics", base
		p.ready = func() bool {
			return httpOK(httpClient, base+"/-/ready") && httpOK(httpClient, "http://"+ksmAddr+"/metrics")
		}
		p.nodes = func() int {
			return min(countQuery(base, `count(up{job="kubelet-cadvisor"} == 1)`), countQuery(base, `count(up{job="kubelet-resource"} == 1)`))
		}
		podCPU := `rate(container_cpu_usage_seconds_total{namespace=%q,%scontainer!=""}[5m])`
		p.questions = []question{
			{"pod CPU 24h", "sum(" + fmt.Sprintf(podCPU, ns, fmt.Sprintf("pod=%q,", pod)) + ")", true},
			{"top 10 pods", "topk(10, sum by (pod) (" + fmt.Sprintf(podCPU, busy, "") + "))", false},
			{"cluster CPU", `sum(rate(node_cpu_usage_seconds_total[5m])) / sum(kube_node_status_allocatable{resource="cpu"})`, false},
		}
	default:
		return nil, fmt.Errorf("unknown peer %q", name)
	}
	return p, nil
}

// promConfig scrapes every kubelet's /metrics/cadvisor and /metrics/resource
// as kube-prometheus does (Kubernetes service discovery, role node; https
// with the CA and a bearer token; honor_labels; its cAdvisor drops), and
// kube-state-metrics.
// promConfig scrapes every kubelet's /metrics/cadvisor and /metrics/resource
// as kube-prometheus does (https with the CA and a bearer token;
// honor_labels; its cAdvisor drops), and kube-state-metrics. The kubelets
// are found by Kubernetes service discovery (role node) against the
// apiserver, or, where the binary has none (Debian's is built without it),
// by HTTP service discovery from sdURL, which lists the apiserver's Nodes
// as role node would.
func promConfig(interval time.Duration, c *cluster, ksm string, kubeSD bool, sdURL string) string {
	sd := fmt.Sprintf(`    kubernetes_sd_configs:
      - role: node
        api_server: %q
        tls_config: {ca_file: %q}
        authorization: {credentials_file: %q}
`, c.api, c.ca, c.tokenFile)
	if !kubeSD {
		sd = fmt.Sprintf("    http_sd_configs: [{url: %q, refresh_interval: 30s}]\n", sdURL)
	}
	kubelet := func(job, path, drops string) string {
		return fmt.Sprintf(`  - job_name: %s
    scheme: https
    metrics_path: %s
    honor_labels: true
    tls_config: {ca_file: %q}
    authorization: {credentials_file: %q}
%s    relabel_configs:
      - {source_labels: [__meta_kubernetes_node_name], target_label: node}
      - {source_labels: [__metrics_path__], target_label: metrics_path}
%s`, job, path, c.ca, c.tokenFile, sd, drops)
	}
	cadvisorDrops := `    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'container_(network_tcp_usage_total|network_udp_usage_total|tasks_state|cpu_load_average_10s)', action: drop}
      - {source_labels: [__name__, pod, namespace], regex: '(container_spec_.*|container_file_descriptors|container_sockets|container_threads_max|container_threads|container_start_time_seconds|container_last_seen);;', action: drop}
      - {source_labels: [__name__, container], regex: '(container_blkio_device_usage_total);.+', action: drop}
`
	return fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
scrape_configs:
%s%s  - job_name: kube-state-metrics
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, interval, min(interval, 10*time.Second), kubelet("kubelet-cadvisor", "/metrics/cadvisor", cadvisorDrops),
		kubelet("kubelet-resource", "/metrics/resource", ""), ksm)
}

// hasKubernetesSD says whether a Prometheus binary has Kubernetes service
// discovery compiled in.
func hasKubernetesSD(bin string) bool {
	b, err := os.ReadFile(bin)
	return err == nil && bytes.Contains(b, []byte("prometheus/discovery/kubernetes"))
}

func runPeer(ctx context.Context, o options, c *cluster, name string) (*result, error) {
	log.Printf("%s: starting", name)
	p, err := startPeer(o, c, name)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := waitForAll(name+" ready", 10*time.Minute, p.procs, p.ready); err != nil {
		return nil, err
	}
	log.Printf("%s: ready; warming up for %s", name, o.warmup)
	if err := sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	var pids []int
	var pidNames []string
	for _, pr := range p.procs {
		pids = append(pids, pr.pid())
		pidNames = append(pidNames, fmt.Sprintf("%s (%d)", pr.name, pr.pid()))
	}
	cpu0 := 0.0
	for _, pid := range pids {
		cpu0 += cpuSeconds(pid)
	}
	disk0 := math.NaN()
	if p.dataDir != "" {
		disk0 = dirBytes(p.dataDir)
	}
	t0 := time.Now()
	rss := sampleRSS(pids, min(o.interval/3, 5*time.Second))
	log.Printf("%s: measuring for %s", name, o.duration)
	if err := sleep(ctx, o.duration); err != nil {
		return nil, err
	}
	wall := time.Since(t0)
	r := &result{name: name, measuredFor: wall, processes: strings.Join(pidNames, ", "), diskPerDay: math.NaN(), series: math.NaN()}
	cpu1 := 0.0
	for _, pid := range pids {
		cpu1 += cpuSeconds(pid)
		r.rssPeak += statusBytes(pid, "VmHWM")
	}
	r.rssSettled = rss.settled()
	r.cpuPerCycle = (cpu1 - cpu0) / (wall.Seconds() / o.interval.Seconds())
	if p.dataDir != "" {
		r.diskPerDay = (dirBytes(p.dataDir) - disk0) / wall.Seconds() * 86400
	}
	if p.metrics != "" {
		r.series = scrapeValue(p.metrics, "prometheus_tsdb_head_series")
	}
	for _, pr := range p.procs {
		if !pr.alive() {
			return nil, fmt.Errorf("%s exited during the measurement (log: %s/%s.log)", pr.name, o.work, pr.name)
		}
	}
	r.nodesSeen = p.nodes()
	r.questions = p.questions
	for _, q := range p.questions {
		a := ask(p.promql, q, o.queryRuns)
		if a.err != nil {
			log.Printf("%s: %s: %v", name, q.name, a.err)
		}
		r.answers = append(r.answers, a)
	}
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func gb(b float64) string { return fmt.Sprintf("%.3f GB", b/1e9) }

func orDash(v float64, f func(float64) string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return f(v)
}

func printResult(r *result) {
	fmt.Printf("\n== %s: %s measured; processes %s\n", r.name, r.measuredFor.Round(time.Second), r.processes)
	fmt.Printf("   nodes with data: %d\n", r.nodesSeen)
	fmt.Printf("   CPU per cycle %.2f s · RSS peak %s, settled %s · disk per day %s · series %s\n",
		r.cpuPerCycle, gb(r.rssPeak), gb(r.rssSettled), orDash(r.diskPerDay, gb),
		orDash(r.series, func(v float64) string { return fmt.Sprintf("%.0f", v) }))
	for i, q := range r.questions {
		a := r.answers[i]
		if a.err != nil {
			fmt.Printf("   %-12s %s  → error %v\n", q.name, q.query, a.err)
			continue
		}
		fmt.Printf("   %-12s %s  → %d series, median %.1f ms\n", q.name, q.query, a.series, float64(a.median.Microseconds())/1000)
	}
}

// ratio is a/b formatted, or "-" when either is missing.
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func report(o options, rs []*result) {
	var km *result
	for _, r := range rs {
		if r.name == "kubemon" {
			km = r
		}
	}
	if km == nil {
		return
	}
	lat := func(r *result, i int) float64 {
		if i >= len(r.answers) || r.answers[i].err != nil || r.answers[i].series == 0 {
			return math.NaN()
		}
		return r.answers[i].median.Seconds()
	}
	fmt.Printf("\n== kubemon ÷ peer: %d nodes × %d pods, interval %s, %s measured each (%s)\n",
		o.nodes, o.pods, o.interval, o.duration, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	if o.kubemonArgs != "" {
		fmt.Printf("   kubemon not on its defaults: serve %s\n", o.kubemonArgs)
	}
	fmt.Println("| peer | CPU per cycle | peak RSS | settled RSS | disk per day | series | pod CPU 24h | top 10 pods | cluster CPU |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	var last []string
	for _, r := range rs {
		if r == km {
			continue
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name,
			ratio(km.cpuPerCycle, r.cpuPerCycle), ratio(km.rssPeak, r.rssPeak), ratio(km.rssSettled, r.rssSettled),
			ratio(km.diskPerDay, r.diskPerDay), ratio(km.series, r.series),
			ratio(lat(km, 0), lat(r, 0)), ratio(lat(km, 1), lat(r, 1)), ratio(lat(km, 2), lat(r, 2)))
		last = append(last, fmt.Sprintf("kubemon/%s cpu=%s rss=%s disk=%s", r.name,
			ratio(km.cpuPerCycle, r.cpuPerCycle), ratio(km.rssPeak, r.rssPeak), ratio(km.diskPerDay, r.diskPerDay)))
	}
	fmt.Println()
	for _, l := range last {
		fmt.Println(l)
	}
}

// clusterOnly is `peers cluster`: the simulated cluster behind a real
// apiserver, and nothing else, until SIGTERM or SIGINT. When it is up,
// -work's cluster.json says where: {"kubeconfig": …, "api": …}. The
// end-to-end tests of sharded kubemon members run on it.
func clusterOnly(args []string) error {
	var o options
	fs := flag.NewFlagSet("cluster", flag.ExitOnError)
	clusterFlags(fs, &o)
	fs.StringVar(&o.work, "work", "", "work directory (required)")
	_ = fs.Parse(args)
	if o.work == "" {
		return fmt.Errorf("peers cluster: -work DIR is required")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	c, err := upCluster(ctx, o)
	defer c.stop()
	if err != nil {
		return err
	}
	go c.keepPodsInSync(ctx)
	b, err := json.Marshal(map[string]string{"kubeconfig": c.kubeconfig, "api": c.api})
	if err != nil {
		return err
	}
	tmp := filepath.Join(o.work, "cluster.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(o.work, "cluster.json")); err != nil {
		return err
	}
	<-ctx.Done()
	log.Printf("stopping the cluster")
	return nil
}

// clusterFlags registers the simulated cluster's flags, which run and
// cluster share.
func clusterFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.nodes, "nodes", 50, "simulated nodes")
	fs.IntVar(&o.pods, "pods", 10, "pods per node")
	fs.StringVar(&o.pki, "pki", "", "hack/cluster/pki binary")
	fs.StringVar(&o.k8sDir, "k8s-dir", "", "directory of kube-apiserver")
	fs.StringVar(&o.etcd, "etcd", "", "etcd binary")
}
