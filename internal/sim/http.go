package sim

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

const (
	contentJSON = "application/json"
	contentText = "text/plain; version=0.0.4; charset=utf-8"

	slowFaultDelay = 30 * time.Second
	oversizedBytes = 64<<20 + 4096
)

// nodeHandler serves one node's kubelet endpoints.
type nodeHandler struct {
	c   *Cluster
	idx int
}

func (h *nodeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tok := h.c.opts.BearerToken; tok != "" && !validBearer(r.Header.Get("Authorization"), tok) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kubelet"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	h.c.serveNode(w, r, h.idx, r.URL.Path)
}

// validBearer says whether an Authorization header carries token.
func validBearer(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

func (c *Cluster) serveNode(w http.ResponseWriter, r *http.Request, ni int, path string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch path {
	case "/healthz":
		if c.fault(ni) == FaultDown {
			http.Error(w, "kubelet is down (simulated)", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	case "/stats/summary", "/stats/summary/":
		cpuMemOnly := r.URL.Query().Get("only_cpu_and_memory") == "true"
		c.serveWithFault(w, r, ni, contentJSON, func(ev *nodeEval) []byte {
			// Indented one space a level, as the kubelet sends it (its
			// fixtures are a third white space), for a decoder's real work.
			b, err := json.MarshalIndent(c.buildSummary(ev, cpuMemOnly), "", " ")
			if err != nil { // cannot happen with these types
				panic(err)
			}
			return append(b, '\n')
		}, nil)
	case "/metrics/resource":
		c.serveWithFault(w, r, ni, contentText, c.resourceMetrics, nil)
	case "/metrics/cadvisor":
		if c.opts.Cadvisor == CadvisorLean {
			c.serveWithFault(w, r, ni, contentText, c.cadvisorMetrics, nil)
		} else {
			c.serveWithFault(w, r, ni, contentText, c.kubeletCadvisorMetrics, c.releaseCadvisorBuf)
		}
	case "/pods", "/pods/":
		T := c.now()
		ev := c.evalNode(ni, T)
		list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: make([]v1.Pod, len(ev.pods))}
		for i := range ev.pods {
			list.Items[i] = c.podObject(ni, &ev.pods[i], T)
		}
		writeJSON(w, &list)
	default:
		http.NotFound(w, r)
	}
}

// serveWithFault evaluates the node at the request time and writes render's
// output, unless a fault is set for the node; release, if set, takes back
// render's buffer once it is written.
func (c *Cluster) serveWithFault(w http.ResponseWriter, r *http.Request, ni int, contentType string, render func(*nodeEval) []byte, release func([]byte)) {
	f := c.fault(ni)
	switch f {
	case FaultDown:
		http.Error(w, "Internal Error: failed to get node info (simulated)", http.StatusInternalServerError)
		return
	case FaultSlow:
		t := time.NewTimer(slowFaultDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-c.done:
			t.Stop()
			return
		}
	}
	T := c.now()
	w.Header().Set("Content-Type", contentType)
	switch f {
	case FaultMalformed:
		w.WriteHeader(http.StatusOK)
		if contentType == contentJSON {
			_, _ = io.WriteString(w, `{"node":{"nodeName":"`+c.nodes[ni].name+`","startTime":"2026-01-01T00:00:00Z","cpu":{"time": ,"usageNanoCores":12}},"pods":[{]}`+"\n")
		} else {
			_, _ = io.WriteString(w, "# TYPE container_cpu_usage_seconds_total counter\ncontainer_cpu_usage_seconds_total{container=\"x\",pod= 1.5 abc\n}}} not a metric\n")
		}
		return
	case FaultTruncated:
		b := render(c.evalNode(ni, T))
		half := b[:len(b)/2]
		w.Header().Set("Content-Length", strconv.Itoa(len(half)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(half)
		return
	case FaultOversized:
		w.WriteHeader(http.StatusOK)
		if contentType == contentJSON {
			c.writeOversizedSummary(w, ni, T)
		} else {
			c.writeOversizedText(w, ni, T)
		}
		return
	}
	ev := c.evalNode(ni, T)
	if f == FaultClockAhead {
		ev.skew = int64(ClockAheadOffset / time.Second)
	}
	b := render(ev)
	if release != nil {
		defer release(b)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// writeOversizedSummary streams a syntactically valid Summary whose pods
// array repeats one pod until the body exceeds 64 MiB.
func (c *Cluster) writeOversizedSummary(w io.Writer, ni int, T int64) {
	ev := c.evalNode(ni, T)
	sum := c.buildSummary(ev, false)
	node, _ := json.Marshal(&sum.Node)
	var pod []byte
	if len(sum.Pods) > 0 {
		pod, _ = json.Marshal(&sum.Pods[0])
	} else {
		pod, _ = json.Marshal(&stats.PodStats{PodRef: stats.PodReference{Name: "filler", Namespace: "default", UID: "00000000-0000-4000-8000-000000000000"}})
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	written := 0
	write := func(b []byte) bool {
		n, err := bw.Write(b)
		written += n
		return err == nil
	}
	if !write([]byte(`{"node":`)) || !write(node) || !write([]byte(`,"pods":[`)) {
		return
	}
	for i := 0; written < oversizedBytes; i++ {
		if i > 0 && !write([]byte{','}) {
			return
		}
		if !write(pod) {
			return
		}
	}
	write([]byte("]}\n"))
	_ = bw.Flush()
}

// writeOversizedText streams a valid exposition of more than 64 MiB.
func (c *Cluster) writeOversizedText(w io.Writer, ni int, T int64) {
	bw := bufio.NewWriterSize(w, 64<<10)
	written := 0
	pw := &promWriter{}
	pw.family("container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", "counter")
	for i := 0; written < oversizedBytes; i++ {
		pw.sample("container_cpu_usage_seconds_total", float64(i), T*1000, "container", "filler", "namespace", "default", "pod", "filler-"+strconv.Itoa(i))
		if len(pw.b) > 32<<10 {
			n, err := bw.Write(pw.b)
			written += n
			if err != nil {
				return
			}
			pw.b = pw.b[:0]
		}
	}
	_, _ = bw.Write(pw.b)
	_ = bw.Flush()
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	_, _ = w.Write(append(b, '\n'))
}

// Handler returns the cluster-wide endpoints:
//
//	GET  /sim/truth[?time=UNIX]                       Truth at now, or at a past second (JSON)
//	POST /sim/restart?namespace=&pod=&container=      Restart a container
//	POST /sim/fault?node=&fault=                      SetFault (fault: none, malformed, truncated, slow, oversized, down, clock-ahead; node "*" = all)
//	POST /sim/fault?pod=NS/NAME&container=&fault=     SetContainerFault (fault: oom, oom-process, crashloop, throttle, none)
//	GET  /api/v1/nodes, /api/v1/nodes/{name}          v1.NodeList / v1.Node
//	GET  /api/v1/pods, /api/v1/namespaces/{ns}/pods   v1.PodList (fieldSelector=spec.nodeName=..., limit and continue supported)
//	GET  /api/v1/nodes/{name}/proxy/{path...}         the node's kubelet endpoints, as through the API server proxy
//	GET  /healthz                                     ok
func (c *Cluster) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /sim/truth", c.serveTruth)
	mux.HandleFunc("POST /sim/restart", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := c.Restart(q.Get("namespace"), q.Get("pod"), q.Get("container")); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sim/fault", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Has("pod") || q.Has("container") {
			c.serveContainerFault(w, q.Get("pod"), q.Get("container"), q.Get("fault"))
			return
		}
		f, err := ParseFault(q.Get("fault"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		node := q.Get("node")
		if _, ok := c.byName[node]; !ok && node != "*" {
			http.Error(w, "sim: unknown node "+strconv.Quote(node), http.StatusNotFound)
			return
		}
		c.SetFault(node, f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/v1/nodes", c.serveNodeList)
	mux.HandleFunc("GET /api/v1/nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		ni, ok := c.byName[r.PathValue("name")]
		if !ok {
			c.notFound(w, "nodes", r.PathValue("name"))
			return
		}
		node := c.nodeObject(ni)
		writeJSON(w, &node)
	})
	mux.HandleFunc("GET /api/v1/nodes/{name}/proxy/{path...}", func(w http.ResponseWriter, r *http.Request) {
		ni, ok := c.byName[r.PathValue("name")]
		if !ok {
			c.notFound(w, "nodes", r.PathValue("name"))
			return
		}
		c.serveNode(w, r, ni, "/"+r.PathValue("path"))
	})
	mux.HandleFunc("GET /api/v1/pods", func(w http.ResponseWriter, r *http.Request) { c.servePodList(w, r, "") })
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods", func(w http.ResponseWriter, r *http.Request) {
		c.servePodList(w, r, r.PathValue("ns"))
	})
	return mux
}

func (c *Cluster) notFound(w http.ResponseWriter, resource, name string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  resource + ` "` + name + `" not found`,
		Reason:   metav1.StatusReasonNotFound,
		Details:  &metav1.StatusDetails{Name: name, Kind: resource},
		Code:     http.StatusNotFound,
	}
	b, _ := json.Marshal(&st)
	w.Header().Set("Content-Type", contentJSON)
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(b)
}

// serveContainerFault sets a container fault: 204, or 400 for a bad
// request, 404 for an unknown pod or container, 409 for throttling a
// container without a CPU limit.
func (c *Cluster) serveContainerFault(w http.ResponseWriter, pod, container, fault string) {
	ns, name, ok := strings.Cut(pod, "/")
	if !ok || ns == "" || name == "" || container == "" {
		http.Error(w, "sim: want pod=NAMESPACE/NAME and container=NAME", http.StatusBadRequest)
		return
	}
	f, err := ParseContainerFault(fault)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch err := c.SetContainerFault(ns, name, container, f); {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrNoCPULimit):
		http.Error(w, err.Error(), http.StatusConflict)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// serveTruth streams Truth at now (or at ?time=, Unix seconds, not in the
// future) without materialising it for all nodes.
func (c *Cluster) serveTruth(w http.ResponseWriter, r *http.Request) {
	T := c.now()
	if s := r.URL.Query().Get("time"); s != "" {
		t, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(t) || int64(t) > T {
			http.Error(w, "sim: time: want Unix seconds not after now", http.StatusBadRequest)
			return
		}
		T = int64(t)
	}
	tm, _ := json.Marshal(time.Unix(T, 0).UTC())
	w.Header().Set("Content-Type", contentJSON)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	bw.WriteString(`{"time":`)
	bw.Write(tm)
	bw.WriteString(`,"containers":[`)
	first := true
	var buf []TruthContainer
	for ni := range c.nodes {
		if r.Context().Err() != nil {
			return
		}
		buf = c.appendTruth(buf[:0], ni, T)
		for i := range buf {
			b, _ := json.Marshal(&buf[i])
			if !first {
				bw.WriteByte(',')
			}
			first = false
			if _, err := bw.Write(b); err != nil {
				return
			}
		}
	}
	bw.WriteString("]}\n")
}

// listWindow parses limit/continue for list endpoints over [0, total).
func listWindow(r *http.Request, total int) (from, to int, next string, err error) {
	q := r.URL.Query()
	if s := q.Get("continue"); s != "" {
		from, err = strconv.Atoi(s)
		if err != nil || from < 0 || from > total {
			return 0, 0, "", errBadContinue
		}
	}
	to = total
	if s := q.Get("limit"); s != "" {
		l, perr := strconv.Atoi(s)
		if perr == nil && l > 0 && from+l < total {
			to = from + l
			next = strconv.Itoa(to)
		}
	}
	return from, to, next, nil
}

type simError string

func (e simError) Error() string { return string(e) }

const errBadContinue = simError("sim: invalid continue token")

func (c *Cluster) serveNodeList(w http.ResponseWriter, r *http.Request) {
	from, to, next, err := listWindow(r, len(c.nodes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	writeListHeader(bw, "NodeList", c.now(), next)
	for ni := from; ni < to; ni++ {
		if ni > from {
			bw.WriteByte(',')
		}
		node := c.nodeObject(ni)
		b, _ := json.Marshal(&node)
		if _, err := bw.Write(b); err != nil {
			return
		}
	}
	bw.WriteString("]}\n")
}

func writeListHeader(bw *bufio.Writer, kind string, T int64, next string) {
	meta := metav1.ListMeta{ResourceVersion: strconv.FormatInt(T, 10), Continue: next}
	mb, _ := json.Marshal(&meta)
	bw.WriteString(`{"kind":"` + kind + `","apiVersion":"v1","metadata":`)
	bw.Write(mb)
	bw.WriteString(`,"items":[`)
}

// servePodList streams the pods of all nodes (optionally of one namespace).
// Pagination (limit/continue) counts pod slots, so a page may hold fewer
// than limit items when filters apply.
func (c *Cluster) servePodList(w http.ResponseWriter, r *http.Request, namespace string) {
	nodeFilter := -1
	if fs := r.URL.Query().Get("fieldSelector"); fs != "" {
		for _, term := range strings.Split(fs, ",") {
			k, v, _ := strings.Cut(term, "=")
			v = strings.TrimPrefix(v, "=")
			switch k {
			case "spec.nodeName":
				ni, ok := c.byName[v]
				if !ok {
					ni = len(c.nodes) // matches nothing
				}
				nodeFilter = ni
			case "metadata.namespace":
				if namespace != "" && namespace != v {
					namespace = "\x00"
				} else {
					namespace = v
				}
			case "status.phase":
				if v != string(v1.PodRunning) {
					nodeFilter = len(c.nodes)
				}
			default:
				http.Error(w, "sim: unsupported field selector "+strconv.Quote(term), http.StatusBadRequest)
				return
			}
		}
	}
	P := c.opts.PodsPerNode
	total := len(c.nodes) * P
	from, to, next, err := listWindow(r, total)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if nodeFilter >= 0 {
		from = max(from, nodeFilter*P)
		to = min(to, (nodeFilter+1)*P)
		if nodeFilter >= len(c.nodes) {
			from, to = 0, 0
		}
		if next != "" && to >= (nodeFilter+1)*P {
			next = ""
		}
	}
	T := c.now()
	w.Header().Set("Content-Type", contentJSON)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	writeListHeader(bw, "PodList", T, next)
	ctrs := make([]ctrEval, c.opts.ContainersPerPod)
	first := true
	var enc bytes.Buffer
	for gs := from; gs < to; gs++ {
		if gs%P == 0 && r.Context().Err() != nil {
			return
		}
		ni, s := gs/P, gs%P
		clear(ctrs)
		pe := podEval{ctrs: ctrs}
		c.evalPod(ni, s, T, &pe)
		if namespace != "" && pe.wl.namespace != namespace {
			continue
		}
		pod := c.podObject(ni, &pe, T)
		enc.Reset()
		if err := json.NewEncoder(&enc).Encode(&pod); err != nil {
			return
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		if _, err := bw.Write(bytes.TrimRight(enc.Bytes(), "\n")); err != nil {
			return
		}
	}
	bw.WriteString("]}\n")
}
