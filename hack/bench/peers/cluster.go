package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubemon/kubemon/internal/sim"
)

// freePort returns a loopback TCP port nobody listens on now.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a child process, stopped by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs bin with args, its output in dir/NAME.log; the child is killed
// if this process dies.
func start(dir, name, bin string, args ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after 30 s.
func (p *proc) stop() {
	if p == nil || !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls ok every 250 ms until it holds, the process dies or the
// timeout passes.
func waitFor(what string, timeout time.Duration, p *proc, ok func() bool) error {
	return waitForAll(what, timeout, []*proc{p}, ok)
}

// waitForAll is waitFor for a peer of several processes: it fails as soon
// as any of them exits.
func waitForAll(what string, timeout time.Duration, ps []*proc, ok func() bool) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if ok() {
			return nil
		}
		for _, p := range ps {
			if p != nil && !p.alive() {
				return fmt.Errorf("%s exited while waiting for %s (log: %s.log)", p.name, what, p.name)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
}

// cluster is the control plane and the simulator behind it.
type cluster struct {
	dir        string
	api        string // https://127.0.0.1:PORT
	ca         string // the CA of the apiserver and the kubelets
	token      string
	tokenFile  string
	kubeconfig string
	procs      []*proc
	sim        *sim.Cluster
	cs         *kubernetes.Clientset
	sdURL      string // HTTP service discovery of the apiserver's Nodes
	sdServer   *http.Server

	mu    sync.Mutex
	pods  map[string]bool // namespace/name of the pods in the apiserver
	owner map[string]bool // kind/namespace/name of the owners created
	// qns/qpod is the pod the questions ask about, chosen once.
	qns, qpod string
}

func (c *cluster) stop() {
	if c.sdServer != nil {
		_ = c.sdServer.Close()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
	if c.sim != nil {
		_ = c.sim.Close()
	}
}

// upCluster writes the PKI (hack/cluster/pki's), starts etcd and
// kube-apiserver on loopback and the simulator with TLS and token
// authentication, and loads the simulator's nodes and pods into the
// apiserver.
func upCluster(ctx context.Context, o options) (*cluster, error) {
	c := &cluster{dir: o.work, pods: map[string]bool{}, owner: map[string]bool{}}
	apiPort := freePort()
	c.api = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	pki := filepath.Join(o.work, "pki")
	if out, err := exec.Command(o.pki, "-dir", pki, "-apiserver", c.api, "-node", "sim-kubelet=127.0.0.1").CombinedOutput(); err != nil {
		return c, fmt.Errorf("pki: %w: %s", err, out)
	}
	c.ca = filepath.Join(pki, "ca.crt")
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	c.token = hex.EncodeToString(b)
	c.tokenFile = filepath.Join(o.work, "token")
	if err := os.WriteFile(c.tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		return c, err
	}
	// One identity for every peer: a static token in system:masters, which
	// the simulated kubelets also accept.
	tokens := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(c.token+",bench-peer,bench-peer,system:masters\n"), 0o600); err != nil {
		return c, err
	}
	c.kubeconfig = filepath.Join(o.work, "peer.kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: peer, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: peer}}]
current-context: c
`, c.api, c.ca, c.token)
	if err := os.WriteFile(c.kubeconfig, []byte(kc), 0o600); err != nil {
		return c, err
	}

	etcdPort, etcdPeer := freePort(), freePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	p, err := start(o.work, "etcd", o.etcd, "--name", "default", "--data-dir", filepath.Join(o.work, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--log-level", "warn", "--quota-backend-bytes", "8589934592")
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, p)
	if err := waitFor("etcd", 60*time.Second, p, func() bool { return httpOK(http.DefaultClient, etcdURL+"/health") }); err != nil {
		return c, err
	}
	p, err = start(o.work, "kube-apiserver", filepath.Join(o.k8sDir, "kube-apiserver"),
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(apiPort),
		"--tls-cert-file", filepath.Join(pki, "apiserver.crt"), "--tls-private-key-file", filepath.Join(pki, "apiserver.key"),
		"--client-ca-file", c.ca, "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(pki, "sa.key"), "--service-cluster-ip-range", "10.96.0.0/16",
		"--requestheader-client-ca-file", filepath.Join(pki, "front-proxy-ca.crt"), "--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", filepath.Join(pki, "front-proxy-client.crt"), "--proxy-client-key-file", filepath.Join(pki, "front-proxy-client.key"),
		"--profiling=false", "--max-requests-inflight", "800", "--max-mutating-requests-inflight", "400")
	if err != nil {
		return c, err
	}
	c.procs = append(c.procs, p)
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return c, err
	}
	rc.QPS, rc.Burst = 2000, 4000
	if c.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return c, err
	}
	if err := waitFor("kube-apiserver", 120*time.Second, p, func() bool {
		_, err := c.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil
	}); err != nil {
		return c, err
	}

	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "kubelet-sim-kubelet-serving.crt"), filepath.Join(pki, "kubelet-sim-kubelet-serving.key"))
	if err != nil {
		return c, err
	}
	c.sim, err = sim.New(sim.Options{Nodes: o.nodes, PodsPerNode: o.pods, Seed: 1, Host: "127.0.0.1",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, BearerToken: c.token})
	if err != nil {
		return c, err
	}
	if err := c.sim.Start(ctx); err != nil {
		return c, err
	}
	t0 := time.Now()
	if err := c.loadNodes(ctx); err != nil {
		return c, err
	}
	n, err := c.syncPods(ctx)
	if err != nil {
		return c, err
	}
	if err := c.serveSD(ctx); err != nil {
		return c, err
	}
	log.Printf("apiserver %s holds %d nodes and %d pods (loaded in %s)", c.api, o.nodes, n, time.Since(t0).Round(time.Second))
	return c, nil
}

func httpOK(hc *http.Client, url string) bool {
	resp, err := hc.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// parallel runs f(i) for i in [0, n) on 16 workers; the first error wins.
func parallel(n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// loadNodes creates every simulated Node and sets its status (addresses,
// kubelet port, capacity, allocatable, conditions).
func (c *cluster) loadNodes(ctx context.Context) error {
	nodes := c.sim.NodeObjects()
	return parallel(len(nodes), func(i int) error {
		n := nodes[i]
		st := n.Status
		n.ObjectMeta = metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, Annotations: n.Annotations}
		got, err := c.cs.CoreV1().Nodes().Create(ctx, &n, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create node %s: %w", n.Name, err)
		}
		got.Status = st
		if _, err := c.cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("node %s status: %w", n.Name, err)
		}
		return nil
	})
}

// syncPods makes the apiserver's pods the simulator's at this moment (pods
// churn in the realistic mode): new pods are created with their owners and
// status Running, gone ones deleted at once. It returns the pods there are.
func (c *cluster) syncPods(ctx context.Context) (int, error) {
	want := c.sim.PodObjects(time.Now())
	c.mu.Lock()
	seen := make(map[string]bool, len(want))
	var add []*v1.Pod
	for i := range want {
		k := want[i].Namespace + "/" + want[i].Name
		seen[k] = true
		if !c.pods[k] {
			add = append(add, &want[i])
		}
	}
	var del []string
	for k := range c.pods {
		if !seen[k] {
			del = append(del, k)
		}
	}
	c.mu.Unlock()
	if err := c.ensureOwners(ctx, add); err != nil {
		return 0, err
	}
	err := parallel(len(add), func(i int) error {
		p := add[i]
		st := p.Status
		p.ObjectMeta = metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, OwnerReferences: p.OwnerReferences}
		p.Status = v1.PodStatus{}
		got, err := c.cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			got, err = c.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		got.Status = st
		if _, err := c.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pod %s/%s status: %w", p.Namespace, p.Name, err)
		}
		c.mu.Lock()
		c.pods[p.Namespace+"/"+p.Name] = true
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, err
	}
	zero := int64(0)
	err = parallel(len(del), func(i int) error {
		ns, name, _ := strings.Cut(del[i], "/")
		err := c.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s: %w", del[i], err)
		}
		c.mu.Lock()
		delete(c.pods, del[i])
		c.mu.Unlock()
		return nil
	})
	return len(want), err
}

// keepPodsInSync follows the simulator's pod churn every 10 s until ctx
// ends.
func (c *cluster) keepPodsInSync(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.syncPods(ctx); err != nil && ctx.Err() == nil {
				log.Printf("pod sync: %v", err)
			}
		}
	}
}

// ensureOwners creates the namespaces, their default ServiceAccounts and
// the pods' owners — Deployments and their ReplicaSets, StatefulSets,
// DaemonSets and Jobs, as the simulator's catalog has them — that are not
// there yet. No controller runs: they are records for the peers that read
// owners (kube-state-metrics), not workloads.
func (c *cluster) ensureOwners(ctx context.Context, pods []*v1.Pod) error {
	type obj struct {
		key    string
		create func() error
	}
	var todo []obj
	add := func(key string, f func() error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.owner[key] {
			return
		}
		c.owner[key] = true
		todo = append(todo, obj{key, f})
	}
	ignoreExists := func(err error) error {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	var nsTodo []obj
	for _, p := range pods {
		ns := p.Namespace
		c.mu.Lock()
		if !c.owner["ns/"+ns] {
			c.owner["ns/"+ns] = true
			nsTodo = append(nsTodo, obj{"ns/" + ns, func() error {
				_, err := c.cs.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				if err = ignoreExists(err); err != nil {
					return err
				}
				_, err = c.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
				return ignoreExists(err)
			}})
		}
		c.mu.Unlock()
		if len(p.OwnerReferences) == 0 {
			continue
		}
		ref := p.OwnerReferences[0]
		tmpl := v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": p.Labels["app"]}}, Spec: *p.Spec.DeepCopy()}
		tmpl.Spec.NodeName = ""
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": p.Labels["app"]}}
		one := int32(1)
		meta := func(name string) metav1.ObjectMeta {
			return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": p.Labels["app"]}}
		}
		apps := c.cs.AppsV1()
		switch ref.Kind {
		case "ReplicaSet":
			hash := p.Labels["pod-template-hash"]
			dep := strings.TrimSuffix(ref.Name, "-"+hash)
			rsName := ref.Name
			add("ReplicaSet/"+ns+"/"+rsName, func() error {
				d, err := apps.Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: meta(dep),
					Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) {
					d, err = apps.Deployments(ns).Get(ctx, dep, metav1.GetOptions{})
				}
				if err != nil {
					return err
				}
				m := meta(rsName)
				m.Labels["pod-template-hash"] = hash
				m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep, UID: d.UID, Controller: ref.Controller}}
				rsTmpl := *tmpl.DeepCopy()
				rsTmpl.Labels["pod-template-hash"] = hash
				rsSel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": p.Labels["app"], "pod-template-hash": hash}}
				_, err = apps.ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: m,
					Spec: appsv1.ReplicaSetSpec{Replicas: &one, Selector: rsSel, Template: rsTmpl}}, metav1.CreateOptions{})
				return ignoreExists(err)
			})
		case "StatefulSet":
			add("StatefulSet/"+ns+"/"+ref.Name, func() error {
				_, err := apps.StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: meta(ref.Name),
					Spec: appsv1.StatefulSetSpec{Replicas: &one, Selector: sel, Template: tmpl, ServiceName: ref.Name}}, metav1.CreateOptions{})
				return ignoreExists(err)
			})
		case "DaemonSet":
			add("DaemonSet/"+ns+"/"+ref.Name, func() error {
				_, err := apps.DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: meta(ref.Name),
					Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}}, metav1.CreateOptions{})
				return ignoreExists(err)
			})
		case "Job":
			add("Job/"+ns+"/"+ref.Name, func() error {
				jt := *tmpl.DeepCopy()
				jt.Labels = nil // the Job's selector is generated
				jt.Spec.RestartPolicy = v1.RestartPolicyOnFailure
				_, err := c.cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{ObjectMeta: meta(ref.Name),
					Spec: batchv1.JobSpec{Template: jt}}, metav1.CreateOptions{})
				return ignoreExists(err)
			})
		}
	}
	run := func(list []obj) error {
		return parallel(len(list), func(i int) error {
			if err := list[i].create(); err != nil {
				c.mu.Lock()
				delete(c.owner, list[i].key)
				c.mu.Unlock()
				return fmt.Errorf("create %s: %w", list[i].key, err)
			}
			return nil
		})
	}
	if err := run(nsTodo); err != nil {
		return err
	}
	return run(todo)
}

// serveSD serves Prometheus HTTP service discovery: the apiserver's Nodes
// as Kubernetes service discovery's role node gives them (address
// InternalIP:kubelet port, __meta_kubernetes_node_name), listed afresh at
// every request.
func (c *cluster) serveSD(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.sdURL = "http://" + ln.Addr().String() + "/sd/nodes"
	mux := http.NewServeMux()
	mux.HandleFunc("/sd/nodes", func(w http.ResponseWriter, r *http.Request) {
		nodes, err := c.cs.CoreV1().Nodes().List(r.Context(), metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		type group struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		}
		out := make([]group, 0, len(nodes.Items))
		for _, n := range nodes.Items {
			addr := ""
			for _, a := range n.Status.Addresses {
				if a.Type == v1.NodeInternalIP && addr == "" {
					addr = a.Address
				}
			}
			out = append(out, group{Targets: []string{net.JoinHostPort(addr, fmt.Sprint(n.Status.DaemonEndpoints.KubeletEndpoint.Port))},
				Labels: map[string]string{"__meta_kubernetes_node_name": n.Name}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	c.sdServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { _ = c.sdServer.Serve(ln) }()
	return nil
}
