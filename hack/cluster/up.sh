#!/usr/bin/env bash
# Starts a real Kubernetes cluster on this machine for kubemon's end-to-end
# tests: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# (v1.36.3, built once by build.sh), and one real node — containerd, runc,
# a kubelet with webhook authentication and authorization, and kube-proxy
# (iptables) — in its own network, mount and PID namespaces, with a real pod
# network (CNI bridge + host-local on 10.244.0.0/24, routed from this host)
# and locally built images (localhost/pause:kubemon, localhost/loadgen:kubemon,
# and kubemon's own image from hack/image.sh).
#
#   hack/cluster/up.sh DIR     # DIR/kubeconfig is an admin kubeconfig
#   KUBEMON=1 hack/cluster/up.sh DIR     # also installs kubemon from deploy/ (kubectl apply -k) as a
#                                        # pod; DIR/kubemon.addr is its pod IP:8080, DIR/viewer.token
#                                        # a token with the kubemon-viewer role; kubectl top works on return
#   KUBEMON=host hack/cluster/up.sh DIR  # kubemon as a process on this host instead
#   hack/cluster/down.sh DIR
#
# Needs root (namespaces, mounts, cgroups). Everything stops by PID.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(realpath -m "$1")
mkdir -p "$DIR"/{logs,pids,data,bin,pki,node}
log() { echo "up.sh: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root"

NS=${KUBEMON_NODE_NS:-kmnode1}
NODE=$NS
HOST_IP=10.77.0.1
NODE_IP=10.77.0.2
POD_CIDR=10.244.0.0/24

# --- one cluster at a time -------------------------------------------------
# Every cluster uses node $NS and 10.77.0.x: a second one would take over the
# first's network, and its down.sh would tear it down. /run/kubemon-cluster-$NS
# names the directory of the cluster that holds them; up.sh refuses while
# that cluster's apiserver runs, and down.sh of another leaves them alone.
OWNER=/run/kubemon-cluster-$NS
exec 9>"$OWNER.lock"
flock 9
if other=$(cat "$OWNER" 2>/dev/null) && [ "$other" != "$DIR" ] \
  && pid=$(cat "$other/pids/kube-apiserver.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
  die "another cluster ($other, apiserver PID $pid) holds node $NS and 10.77.0.x: stop it first (hack/cluster/down.sh $other)"
fi
echo "$DIR" >"$OWNER"
flock -u 9

# --- packages and binaries -------------------------------------------------
need=()
for p in containerd runc iproute2 util-linux mount containernetworking-plugins iptables conntrack; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
k8s_dir=$("$repo/hack/cluster/build.sh")
etcd_dir=$(dirname "$k8s_dir")/etcd-${ETCD_VERSION:-v3.6.16}
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do ln -sf "$k8s_dir/$b" "$DIR/bin/$b"; done
ln -sf "$etcd_dir/etcd" "$DIR/bin/etcd"
(cd "$repo" && go build -o "$DIR/bin/pki" ./hack/cluster/pki && go build -o "$DIR/bin/ociimage" ./hack/cluster/ociimage \
  && CGO_ENABLED=0 go build -o "$DIR/bin/pause" ./hack/cluster/images/pause \
  && CGO_ENABLED=0 go build -o "$DIR/bin/loadgen" ./hack/cluster/images/loadgen \
  && CGO_ENABLED=0 go build -o "$DIR/bin/probe" ./hack/cluster/images/probe)

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
# start NAME CMD...: runs CMD in the background, its PID in pids/NAME.pid.
start() {
  local name=$1; shift
  ("$@" >"$DIR/logs/$name.log" 2>&1 & echo $! >"$DIR/pids/$name.pid")
}
wait_for() { # wait_for SECONDS WHAT CMD...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${t}s waiting for $what (logs in $DIR/logs)"
}

# --- network namespace for the node ---------------------------------------
if ! ip netns list | grep -qw "$NS"; then
  ip netns add "$NS"
  ip link add "${NS}h" type veth peer name "${NS}n"
  ip link set "${NS}n" netns "$NS"
  ip addr add "$HOST_IP/24" dev "${NS}h"
  ip link set "${NS}h" up
  ip netns exec "$NS" ip addr add "$NODE_IP/24" dev "${NS}n"
  ip netns exec "$NS" ip link set "${NS}n" up
  ip netns exec "$NS" ip link set lo up
fi
# The pod network lives in the node: this host reaches pods through it.
ip route replace "$POD_CIDR" via "$NODE_IP" dev "${NS}h"
echo "$HOST_IP" >"$DIR/host.ip"

# --- PKI and control plane ---------------------------------------------------
API_PORT=$(free_port)
echo "$API_PORT" >"$DIR/api.port"
SERVER=https://$HOST_IP:$API_PORT
"$DIR/bin/pki" -dir "$DIR/pki" -apiserver "$SERVER" -node "$NODE=$NODE_IP" -serving "kubemon=kubemon.kube-system.svc,localhost"
cp "$DIR/pki/admin.kubeconfig" "$DIR/kubeconfig"
P=$DIR/pki

ETCD_PORT=$(free_port) ETCD_PEER=$(free_port)
start etcd "$DIR/bin/etcd" --name default --data-dir "$DIR/data/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "default=http://127.0.0.1:$ETCD_PEER" --log-level warn
wait_for 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# The apiserver dials an APIService's endpoint (the kubemon pod's IP) rather
# than a Service IP only kube-proxy in the node can translate; a host-process
# kubemon is reached through an ExternalName Service, which needs the
# apiserver to resolve the Service instead.
aggregator_routing=true
[ "${KUBEMON:-}" = host ] && aggregator_routing=false
start kube-apiserver "$DIR/bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$API_PORT" \
  --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" \
  --client-ca-file "$P/ca.crt" --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$P/sa.pub" \
  --service-account-signing-key-file "$P/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
  --kubelet-client-certificate "$P/apiserver-kubelet-client.crt" --kubelet-client-key "$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$P/ca.crt" --kubelet-preferred-address-types InternalIP \
  --requestheader-client-ca-file "$P/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$P/front-proxy-client.crt" --proxy-client-key-file "$P/front-proxy-client.key" \
  --enable-aggregator-routing="$aggregator_routing" --allow-privileged=true --profiling=false
KC=(kubectl --kubeconfig "$DIR/kubeconfig")
wait_for 60 kube-apiserver "${KC[@]}" get --raw /readyz

start kube-controller-manager "$DIR/bin/kube-controller-manager" \
  --kubeconfig "$P/controller-manager.kubeconfig" --authentication-kubeconfig "$P/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$P/controller-manager.kubeconfig" --use-service-account-credentials \
  --service-account-private-key-file "$P/sa.key" --root-ca-file "$P/ca.crt" \
  --cluster-signing-cert-file "$P/ca.crt" --cluster-signing-key-file "$P/ca.key" \
  --controllers '*' --leader-elect=false --bind-address 127.0.0.1 --secure-port "$(free_port)"
start kube-scheduler "$DIR/bin/kube-scheduler" \
  --kubeconfig "$P/scheduler.kubeconfig" --authentication-kubeconfig "$P/scheduler.kubeconfig" \
  --authorization-kubeconfig "$P/scheduler.kubeconfig" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port "$(free_port)"
wait_for 60 "the default service account" "${KC[@]}" -n default get serviceaccount default

# --- the node ------------------------------------------------------------------
N=$DIR/node
mkdir -p "$N"/{containerd/root,containerd/state,cni/net.d,cni/ipam,kubelet,pod-logs,container-logs,static,sysctl,images}
# A real pod network: a bridge in the node's namespace, addresses from
# host-local, masquerade for traffic leaving the pod range.
cat >"$N/cni/net.d/10-kubemon.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "kubemon-pods", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$N/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
CNI
cat >"$N/containerd/config.toml" <<TOML
version = 2
root = "$N/containerd/root"
state = "$N/containerd/state"
[grpc]
  address = "$N/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:kubemon"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
TOML
cat >"$N/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization:
  mode: Webhook
tlsCertFile: $P/kubelet-$NODE-serving.crt
tlsPrivateKeyFile: $P/kubelet-$NODE-serving.key
cgroupDriver: cgroupfs
cgroupRoot: /$NODE
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
enforceNodeAllocatable: ["none"]
makeIPTablesUtilChains: false
protectKernelDefaults: false
containerRuntimeEndpoint: unix://$N/containerd.sock
staticPodPath: $N/static
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
resolvConf: ""
podLogsDir: $N/pod-logs
YAML
echo 1 >"$N/sysctl/overcommit_memory"; echo 10 >"$N/sysctl/panic"; echo 1 >"$N/sysctl/panic_on_oops"
mkdir -p /var/lib/kubelet /var/log/containers

# The node's own namespaces: a fresh sysfs (its network devices only), the
# host's cgroup hierarchies put back, and the kubelet's hard-coded paths and
# kernel settings bound to files of its own.
cat >"$N/enter.sh" <<SH
#!/usr/bin/env bash
set -euo pipefail
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
while read -r dir type opts; do
  mkdir -p "\$dir"
  mount -t "\$type" -o "\$opts" "\$type" "\$dir"
done <"$N/cgroups"
mount --bind "$N/sysctl/overcommit_memory" /proc/sys/vm/overcommit_memory
mount --bind "$N/sysctl/panic" /proc/sys/kernel/panic
mount --bind "$N/sysctl/panic_on_oops" /proc/sys/kernel/panic_on_oops
mount --bind "$N/kubelet" /var/lib/kubelet
echo 1 >/proc/sys/net/ipv4/ip_forward # the node's own network namespace: it routes for its pods
mount --bind "$N/container-logs" /var/log/containers
containerd --config "$N/containerd/config.toml" >"$DIR/logs/containerd.log" 2>&1 &
for _ in \$(seq 100); do [ -S "$N/containerd.sock" ] && break; sleep 0.1; done
for img in "$N"/images/*.tar; do ctr -a "$N/containerd.sock" -n k8s.io images import "\$img" >/dev/null; done
# kube-proxy (iptables mode) in the node's namespaces: Services work for pods.
# Service traffic is masqueraded (replies between pods on the bridge then
# return through the node whatever the bridge-netfilter settings), conntrack sysctls
# are left alone (they are the machine's).
"$DIR/bin/kube-proxy" --kubeconfig "$P/kube-proxy.kubeconfig" --hostname-override "$NODE" \
  --bind-address "$NODE_IP" --cluster-cidr "$POD_CIDR" --proxy-mode iptables --masquerade-all \
  --conntrack-max-per-core 0 --conntrack-min 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
  --oom-score-adj 0 --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 \
  --nodeport-addresses "$NODE_IP/32" >"$DIR/logs/kube-proxy.log" 2>&1 &
exec "$DIR/bin/kubelet" --config "$N/kubelet.yaml" --kubeconfig "$P/kubelet-$NODE.kubeconfig" \
  --node-ip "$NODE_IP" --hostname-override "$NODE" --containerd "$N/containerd.sock" >"$DIR/logs/kubelet.log" 2>&1
SH
chmod +x "$N/enter.sh"
# The host's cgroup v1/v2 mounts, replayed inside, and the node's cgroupRoot
# in each hierarchy (the kubelet wants it to exist).
awk '$3 ~ /^cgroup2?$/ && $2 ~ /^\/sys\/fs\/cgroup\// {print $2, $3, $4}' /proc/mounts >"$N/cgroups"
while read -r dir _ _; do mkdir -p "$dir/$NODE"; done <"$N/cgroups"

"$DIR/bin/ociimage" -binary "$DIR/bin/pause" -name localhost/pause:kubemon -out "$N/images/pause.tar"
"$DIR/bin/ociimage" -binary "$DIR/bin/loadgen" -name localhost/loadgen:kubemon -out "$N/images/loadgen.tar"
"$DIR/bin/ociimage" -binary "$DIR/bin/probe" -name localhost/probe:kubemon -out "$N/images/probe.tar"
if [ "${KUBEMON:-}" = 1 ]; then
  # kubemon's own image, as users build it (localhost/kubemon:dev, the name deploy/ uses).
  IMAGE=localhost/kubemon:dev "$repo/hack/image.sh" "$N/images/kubemon.tar" >/dev/null
fi

start node nsenter --net="/run/netns/$NS" -- unshare --mount --propagation slave --pid --fork --mount-proc "$N/enter.sh"
wait_for 180 "node $NODE Ready" sh -c "${KC[*]} get node $NODE -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
log "node $NODE is Ready"

# --- kubemon -----------------------------------------------------------------------
# A token-bearing kubeconfig for the kubemon ServiceAccount (host mode, and
# tests that run their own kubemon with narrower rights).
kubemon_kubeconfig() {
  local token
  token=$("${KC[@]}" -n kube-system create token kubemon --duration 24h)
  cat >"$DIR/kubemon.kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$SERVER", certificate-authority: "$P/ca.crt"}}]
users: [{name: kubemon, user: {token: "$token"}}]
contexts: [{name: c, context: {cluster: c, user: kubemon}}]
current-context: c
KCFG
}
# A ServiceAccount bound to kubemon-viewer, for tests and people reading
# kubemon's HTTP API with a token.
viewer_token() {
  "${KC[@]}" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: kubemon-e2e-viewer, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubemon-e2e-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubemon-viewer}
subjects: [{kind: ServiceAccount, name: kubemon-e2e-viewer, namespace: default}]
YAML
  "${KC[@]}" -n default create token kubemon-e2e-viewer --duration 24h >"$DIR/viewer.token"
}
wait_apiservices() {
  for svc in v1beta1.metrics.k8s.io v1alpha1.kubemon.io; do
    wait_for 120 "APIService $svc Available" sh -c \
      "${KC[*]} get apiservice $svc -o jsonpath='{.status.conditions[?(@.type==\"Available\")].status}' | grep -qx True"
  done
  wait_for 120 "kubectl top nodes" "${KC[@]}" top nodes
}

if [ "${KUBEMON:-}" = 1 ]; then
  # As a user installs it: the Kustomize base, with an overlay that only
  # sets what a test cluster needs — a 5 s interval, and a serving
  # certificate for kubemon.kube-system.svc signed by the cluster CA so the
  # APIServices verify TLS instead of skipping it.
  O=$DIR/overlay
  mkdir -p "$O"
  cp "$P/kubemon.crt" "$O/tls.crt"; cp "$P/kubemon.key" "$O/tls.key"
  cat >"$O/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$(realpath --relative-to="$O" "$repo/deploy")]
secretGenerator:
  - {name: kubemon-tls, namespace: kube-system, files: [tls.crt, tls.key], type: kubernetes.io/tls}
patches:
  - target: {kind: Deployment, name: kubemon}
    patch: |
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--interval=${KUBEMON_INTERVAL:-5s}"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--tls-cert-file=/tls/tls.crt"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--tls-private-key-file=/tls/tls.key"}
      - {op: add, path: /spec/template/spec/containers/0/volumeMounts/-, value: {name: tls, mountPath: /tls, readOnly: true}}
      - {op: add, path: /spec/template/spec/volumes/-, value: {name: tls, secret: {secretName: kubemon-tls}}}
  - target: {kind: APIService}
    patch: |
      - {op: replace, path: /spec/insecureSkipTLSVerify, value: false}
      - {op: add, path: /spec/caBundle, value: "$(base64 -w0 "$P/ca.crt")"}
YAML
  "${KC[@]}" apply -k "$O" >/dev/null
  kubemon_kubeconfig
  viewer_token
  wait_for 180 "the kubemon Deployment" "${KC[@]}" -n kube-system rollout status deployment/kubemon --timeout 5s
  pod_ip=$("${KC[@]}" -n kube-system get pods -l app.kubernetes.io/name=kubemon -o jsonpath='{.items[0].status.podIP}')
  [ -n "$pod_ip" ] || die "the kubemon pod has no IP"
  echo "$pod_ip:8080" >"$DIR/kubemon.addr"
  echo "$pod_ip:4443" >"$DIR/kubemon-metrics-api.addr"
  wait_for 60 "kubemon's pod at $pod_ip" curl -sf "http://$pod_ip:8080/healthz"
  wait_apiservices
  log "kubemon pod at http://$pod_ip:8080 (token: $DIR/viewer.token), metrics.k8s.io and kubemon.io through the apiserver (kubectl top works)"
elif [ "${KUBEMON:-}" = host ]; then
  (cd "$repo" && go build -o "$DIR/bin/kubemon" ./cmd/kubemon)
  "${KC[@]}" apply -k "$repo/deploy/" --dry-run=server >/dev/null
  "${KC[@]}" apply -f "$repo/deploy/rbac.yaml" >/dev/null
  kubemon_kubeconfig
  viewer_token
  KPORT=$(free_port)
  MPORT=$(free_port)
  # kubemon runs here as a process, not a pod, so the APIServices reach it
  # through an ExternalName Service "localhost" (the apiserver runs on this
  # host) and verify its certificate (SAN kubemon.kube-system.svc) with
  # the cluster CA instead of skipping verification.
  "${KC[@]}" apply -f "$repo/deploy/metrics-api.yaml" >/dev/null
  "${KC[@]}" apply -f - >/dev/null <<SVC
apiVersion: v1
kind: Service
metadata: {name: kubemon, namespace: kube-system, labels: {app.kubernetes.io/name: kubemon}}
spec: {type: ExternalName, externalName: localhost, ports: [{name: https, port: $MPORT}]}
SVC
  for svc in v1beta1.metrics.k8s.io v1alpha1.kubemon.io; do
    "${KC[@]}" patch apiservice "$svc" --type merge \
      -p "{\"spec\":{\"insecureSkipTLSVerify\":false,\"caBundle\":\"$(base64 -w0 "$P/ca.crt")\",\"service\":{\"port\":$MPORT}}}" >/dev/null
  done
  start kubemon "$DIR/bin/kubemon" serve --kubeconfig "$DIR/kubemon.kubeconfig" --listen "127.0.0.1:$KPORT" \
    --data-dir "$DIR/data/kubemon" --interval "${KUBEMON_INTERVAL:-5s}" \
    --metrics-api-listen "127.0.0.1:$MPORT" --tls-cert-file "$P/kubemon.crt" --tls-private-key-file "$P/kubemon.key"
  wait_for 60 kubemon curl -sf "http://127.0.0.1:$KPORT/healthz"
  echo "127.0.0.1:$KPORT" >"$DIR/kubemon.addr"
  echo "127.0.0.1:$MPORT" >"$DIR/kubemon-metrics-api.addr"
  wait_apiservices
  log "kubemon at http://127.0.0.1:$KPORT, metrics.k8s.io at https://127.0.0.1:$MPORT (kubectl top works)"
fi
log "cluster up: kubectl --kubeconfig $DIR/kubeconfig get nodes"
