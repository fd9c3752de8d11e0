#!/bin/bash
# cluster.sh - single-node Kubernetes v1.35.4 (etcd, kube-apiserver, controller-manager, scheduler,
# kubelet + Debian containerd/runc/CNI) built only from Go modules and Debian packages. Run as root.
#   cluster.sh start   build what is missing, then start everything (default)
#   cluster.sh demo    Deployment from the local registry, curl via port-forward, scale to 3, EndpointSlices
#   cluster.sh stop | status | build | clean (stop + wipe state, keep binaries)
# Binaries and state under $P (default $HOME/.cache/wisp/k8s, or $K8S_DIR; `make k8s-bin` builds there);
# every server listens on 127.0.0.1 only.
set -euo pipefail
P=${K8S_DIR:-$HOME/.cache/wisp/k8s}
K8S=1.35.4 STAGING=0.35.4 ETCD=3.6.16 CRANE=0.22.1 REGISTRY=3.1.2 CRICTL=1.34.0
BIN=$P/bin TOOLS=$P/tools SRC=$P/src PKI=$P/pki ETC=$P/etc VAR=$P/var RUN=$P/run LOG=$P/log
REG=127.0.0.1:5310 ETCD_PORT=12379 API_PORT=6443 NODE=$(hostname)
DEV=$(ip -4 route show default 2>/dev/null | awk '{print $5; exit}')   # host IP: only advertised, never dialed
HOSTIP=$(ip -4 -o addr show dev "${DEV:-lo}" 2>/dev/null | awk '{split($4,a,"/"); print a[1]; exit}')
HOSTIP=${HOSTIP:-127.0.0.1} SOCK=$RUN/containerd/containerd.sock
export PATH=$BIN:$TOOLS:/usr/local/go/bin:$PATH KUBECONFIG=$ETC/admin.kubeconfig GOFLAGS=-buildvcs=false
CTR="ctr --address $SOCK -n k8s.io" CRI="crictl --config /dev/null -r unix://$SOCK"
log() { echo "[$(date +%T)] $*"; }

# ---------------- build: one throwaway module for all five k8s binaries (shared deps) ----------------
mkmain() { # <cmd dir> <constructor>: the same tiny main upstream uses
  mkdir -p $SRC/k8s/cmd/$1; cat >$SRC/k8s/cmd/$1/main.go <<EOF
package main
import ("context"; "os"; "k8s.io/component-base/cli"; _ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"; _ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/$1/app")
func main() { _ = context.TODO; os.Exit(cli.Run(app.$2)) }
EOF
}
build() {
  command -v containerd >/dev/null && [ -x /usr/lib/cni/bridge ] ||
    { apt-get update -q && apt-get install -y -q containerd containernetworking-plugins iptables; }
  mkdir -p $BIN $TOOLS $SRC/k8s $SRC/etcd $SRC/img/pause $SRC/img/hello
  if [ ! -f $SRC/k8s/go.sum ]; then
    # k8s.io/kubernetes requires its staging modules as v0.0.0 + local replaces: pin each to its tag
    { printf 'module local.test/k8s\n\ngo 1.25.0\n\ngodebug default=go1.25\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' $K8S
      for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
        cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
        cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms \
        kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
        mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller; do
        printf '\tk8s.io/%s => k8s.io/%s v%s\n' $m $m $STAGING; done; echo ')'; } >$SRC/k8s/go.mod
    mkmain kube-apiserver 'NewAPIServerCommand()'
    mkmain kube-controller-manager 'NewControllerManagerCommand()'
    mkmain kube-scheduler 'NewSchedulerCommand()'
    mkmain kubelet 'NewKubeletCommand(context.Background())'
    mkdir -p $SRC/k8s/cmd/kubectl; printf '%s\n' 'package main' \
      'import ("k8s.io/component-base/cli"; "k8s.io/kubectl/pkg/cmd"; "k8s.io/kubectl/pkg/cmd/util")' \
      'func main() { if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil { util.CheckErr(err) } }' \
      >$SRC/k8s/cmd/kubectl/main.go
    (cd $SRC/k8s && go mod tidy)
  fi
  local V=k8s.io/component-base/version C=k8s.io/client-go/pkg/version   # so version checks see v1.35.4
  local LDF="-s -w -X $V.gitVersion=v$K8S -X $V.gitMajor=1 -X $V.gitMinor=35 -X $C.gitVersion=v$K8S -X $C.gitMajor=1 -X $C.gitMinor=35"
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do   # one at a time (RAM)
    [ -x $BIN/$b ] || { log "building $b"; (cd $SRC/k8s && go build -trimpath -ldflags "$LDF" -o $BIN/$b ./cmd/$b); }
  done
  if [ ! -x $BIN/etcd ]; then
    printf 'module local.test/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' $ETCD >$SRC/etcd/go.mod
    printf '%s\n' 'package main' 'import ("os"; "go.etcd.io/etcd/server/v3/etcdmain")' \
      'func main() { etcdmain.Main(os.Args) }' >$SRC/etcd/main.go
    log "building etcd"; (cd $SRC/etcd && go mod tidy && go build -trimpath -ldflags '-s -w' -o $BIN/etcd .)
  fi
  # pause = pod sandbox (sleep, reap zombies, exit on INT/TERM); hello = demo HTTP server on $PORT
  printf 'module local.test/img\n\ngo 1.25.0\n' >$SRC/img/go.mod
  printf '%s\n' 'package main' 'import ("os"; "os/signal"; "syscall")' 'func main() {' \
    '	c := make(chan os.Signal, 8); signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)' \
    '	for s := range c { if s != syscall.SIGCHLD { os.Exit(0) }' \
    '		for { if pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 || err != nil { break } } } }' \
    >$SRC/img/pause/main.go
  printf '%s\n' 'package main' 'import ("fmt"; "net/http"; "os")' 'func main() {' \
    '	port, h := os.Getenv("PORT"), ""; if port == "" { port = "8080" }; h, _ = os.Hostname()' \
    '	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s\n", h) })' \
    '	fmt.Fprintln(os.Stderr, http.ListenAndServe(":"+port, nil)); os.Exit(1) }' >$SRC/img/hello/main.go
  for b in pause hello; do [ -x $BIN/$b ] || (cd $SRC/img && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $BIN/$b ./$b); done
  [ -x $TOOLS/crane ] || GOBIN=$TOOLS go install github.com/google/go-containerregistry/cmd/crane@v$CRANE
  [ -x $TOOLS/registry ] || GOBIN=$TOOLS go install github.com/distribution/distribution/v3/cmd/registry@v$REGISTRY
  [ -x $TOOLS/crictl ] || GOBIN=$TOOLS go install sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL
  return 0
}

# ---------------- PKI (openssl: one CA, SA key pair, client/serving certs) and kubeconfigs ----------------
issue() { # <file> <CN> [O] [SANs]
  local subj="/CN=$2" ext="basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth,serverAuth"
  [ -n "${3:-}" ] && subj="/O=$3$subj"; [ -n "${4:-}" ] && ext="$ext\nsubjectAltName=$4"
  openssl req -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr -subj "$subj" 2>/dev/null
  openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out $1.crt -extfile <(printf "$ext") 2>/dev/null
}
pki() {
  mkdir -p $PKI $ETC; [ -f $PKI/kubelet.crt ] && return 0
  (cd $PKI
   openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 -subj /CN=wisp-test-ca 2>/dev/null
   openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
   issue apiserver kube-apiserver "" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.0.0.1,IP:$HOSTIP"
   issue admin admin system:masters
   issue kcm system:kube-controller-manager
   issue sched system:kube-scheduler
   issue apiserver-kubelet kube-apiserver-kubelet-client system:masters
   issue kubelet system:node:$NODE system:nodes "DNS:$NODE,DNS:localhost,IP:127.0.0.1,IP:$HOSTIP")
  for u in admin kcm sched kubelet; do cat >$ETC/$u.kubeconfig <<EOF
{apiVersion: v1, kind: Config, current-context: local, contexts: [{name: local, context: {cluster: local, user: $u}}],
 clusters: [{name: local, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI/ca.crt"}}],
 users: [{name: $u, user: {client-certificate: "$PKI/$u.crt", client-key: "$PKI/$u.key"}}]}
EOF
  done
}

# ---------------- configs: containerd (cgroupfs + CRI), CNI, registry, kubelet ----------------
configs() {
  mkdir -p $ETC/cni $VAR/etcd $VAR/kubelet $RUN $LOG
  cat >$ETC/containerd.toml <<EOF
version = 2
root = "$VAR/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$VAR/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REG/pause:3.10"
  # this sandbox lacks CAP_SYS_RESOURCE: runc dies on oom_score_adj=-998 ("can't get final child's PID")
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOF
  # isolated bridge (no host gateway, no masquerade): host routing/iptables untouched, pod IPs never routed
  cat >$ETC/cni/10-local.conflist <<EOF
{"cniVersion": "0.4.0", "name": "local", "plugins": [{"type": "bridge", "bridge": "wispk8s0",
 "isGateway": false, "ipMasq": false, "ipam": {"type": "host-local", "dataDir": "$VAR/cni",
 "ranges": [[{"subnet": "10.88.0.0/24"}]]}}]}
EOF
  printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: "%s"}\n' \
    $VAR/registry $REG >$ETC/registry.yml
  cat >$ETC/kubelet.yaml <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "$PKI/ca.crt"}}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
containerRuntimeEndpoint: "unix://$SOCK"
cgroupDriver: cgroupfs
failCgroupV1: false          # v1.35 refuses cgroup v1 hosts unless told otherwise
failSwapOn: false
podLogsDir: "$VAR/pod-logs"
evictionHard: {memory.available: 100Mi, nodefs.available: 3%, imagefs.available: 3%}
EOF
}

# ---------------- process helpers: pid files, and we only ever signal our own pids ----------------
alive() { [ -f $RUN/$1.pid ] && kill -0 "$(cat $RUN/$1.pid)" 2>/dev/null; }
run_bg() { local n=$1; shift; alive $n && { log "$n already running"; return 0; }
  nohup "$@" >$LOG/$n.log 2>&1 </dev/null & echo $! >$RUN/$n.pid; log "started $n (pid $!)"; }
waitfor() { local w=$1 t=$2; shift 2   # <what> <seconds> <probe cmd...>
  for ((i = 0; i < t; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done; log "TIMEOUT: $w"; return 1; }
stop_one() { alive $1 || return 0; local p; p=$(cat $RUN/$1.pid); kill $p
  for ((i = 0; i < 30; i++)); do kill -0 $p 2>/dev/null || break; sleep 1; done
  kill -0 $p 2>/dev/null && kill -9 $p; rm -f $RUN/$1.pid; log "stopped $1"; }
mkimage() { # <binary> <tag>: one-layer image, entrypoint /<binary>, pushed to the local registry
  local d; d=$(mktemp -d); cp $BIN/$1 $d/; tar -C $d -cf $d/layer.tar $1
  crane append --oci-empty-base -f $d/layer.tar -t $REG/$1:$2 >/dev/null 2>&1
  crane mutate --entrypoint /$1 --set-platform linux/amd64 -t $REG/$1:$2 $REG/$1:$2 >/dev/null 2>&1; rm -rf $d; }

start() {
  local t0=$SECONDS; build; pki; configs
  # kubelet rewrites these sysctls at start; remember the originals so 'stop' restores them
  [ -f $RUN/sysctl.orig ] || for k in vm/overcommit_memory kernel/panic kernel/panic_on_oops; do
    echo "$k $(cat /proc/sys/$k)"; done >$RUN/sysctl.orig
  run_bg registry $TOOLS/registry serve $ETC/registry.yml
  run_bg containerd containerd --config $ETC/containerd.toml
  waitfor registry 30 curl -sf http://$REG/v2/; waitfor containerd 30 $CTR version
  if ! $CTR images ls -q | grep -qx "$REG/pause:3.10"; then   # sandbox image: build, save, ctr import
    mkimage pause 3.10; crane pull $REG/pause:3.10 $VAR/pause.tar; $CTR images import $VAR/pause.tar; fi
  crane digest $REG/hello:v1 >/dev/null 2>&1 || mkimage hello v1   # demo image; kubelet pulls it
  local peer=http://127.0.0.1:$((ETCD_PORT + 1))
  run_bg etcd $BIN/etcd --name local --data-dir $VAR/etcd --listen-client-urls http://127.0.0.1:$ETCD_PORT \
    --advertise-client-urls http://127.0.0.1:$ETCD_PORT --listen-peer-urls $peer \
    --initial-advertise-peer-urls $peer --initial-cluster local=$peer
  waitfor etcd 60 curl -sf http://127.0.0.1:$ETCD_PORT/health
  run_bg kube-apiserver $BIN/kube-apiserver --etcd-servers=http://127.0.0.1:$ETCD_PORT \
    --bind-address=127.0.0.1 --secure-port=$API_PORT --advertise-address=$HOSTIP \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --client-ca-file=$PKI/ca.crt --tls-cert-file=$PKI/apiserver.crt --tls-private-key-file=$PKI/apiserver.key \
    --kubelet-client-certificate=$PKI/apiserver-kubelet.crt --kubelet-client-key=$PKI/apiserver-kubelet.key \
    --kubelet-certificate-authority=$PKI/ca.crt --kubelet-preferred-address-types=Hostname,InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file=$PKI/sa.pub --service-account-signing-key-file=$PKI/sa.key
  waitfor kube-apiserver 180 kubectl get --raw /readyz
  run_bg kube-controller-manager $BIN/kube-controller-manager --kubeconfig=$ETC/kcm.kubeconfig \
    --authentication-kubeconfig=$ETC/kcm.kubeconfig --authorization-kubeconfig=$ETC/kcm.kubeconfig \
    --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file=$PKI/sa.key --root-ca-file=$PKI/ca.crt \
    --cluster-signing-cert-file=$PKI/ca.crt --cluster-signing-key-file=$PKI/ca.key
  run_bg kube-scheduler $BIN/kube-scheduler --kubeconfig=$ETC/sched.kubeconfig --bind-address=127.0.0.1 \
    --authentication-kubeconfig=$ETC/sched.kubeconfig --authorization-kubeconfig=$ETC/sched.kubeconfig --leader-elect=false
  run_bg kubelet $BIN/kubelet --config=$ETC/kubelet.yaml --kubeconfig=$ETC/kubelet.kubeconfig --root-dir=$VAR/kubelet --v=1
  waitfor "node $NODE Ready" 180 kubectl wait --for=condition=Ready node/$NODE --timeout=5s
  log "cluster up in $((SECONDS - t0))s. export KUBECONFIG=$KUBECONFIG PATH=$BIN:\$PATH"
}

stop() {
  stop_one port-forward; stop_one kubelet
  # tear pod sandboxes down through CRI (CNI DEL, netns unmount) before containerd goes
  alive containerd && { $CRI stopp $($CRI pods -q 2>/dev/null) >/dev/null 2>&1; $CRI rmp -a -f >/dev/null 2>&1; } || true
  for n in kube-scheduler kube-controller-manager kube-apiserver etcd containerd registry; do stop_one $n; done
  # leftovers: kubelet volume mounts, the bridge, empty kubepods cgroups; then restore sysctls
  findmnt -rn -o TARGET | grep "^$P/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del wispk8s0 2>/dev/null || true; find /sys/fs/cgroup/*/kubepods* -depth -type d -exec rmdir {} \; 2>/dev/null || true
  if [ -f $RUN/sysctl.orig ]; then while read -r k v; do echo $v >/proc/sys/$k; done <$RUN/sysctl.orig; rm $RUN/sysctl.orig; fi; log "all stopped"
}
status() { for n in registry containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
    alive $n && echo "$n: running (pid $(cat $RUN/$n.pid))" || echo "$n: stopped"; done
  alive kube-apiserver && kubectl get nodes,pods -A -o wide || true; }
demo() {
  local t0=$SECONDS; kubectl apply -f - <<EOF
{apiVersion: apps/v1, kind: Deployment, metadata: {name: hello}, spec: {replicas: 1, selector: {matchLabels: {app: hello}},
 template: {metadata: {labels: {app: hello}}, spec: {containers: [{name: hello, image: "$REG/hello:v1", ports: [{containerPort: 8080}]}]}}}}
---
{apiVersion: v1, kind: Service, metadata: {name: hello}, spec: {selector: {app: hello}, ports: [{port: 80, targetPort: 8080}]}}
EOF
  kubectl rollout status deploy/hello --timeout=180s; log "pod Running after $((SECONDS - t0))s"
  # pod IPs live on an unrouted bridge: reach the pod through apiserver -> kubelet -> CRI port-forward
  run_bg port-forward kubectl port-forward deploy/hello 18080:8080
  waitfor port-forward 30 curl -sf http://127.0.0.1:18080/ && curl -s http://127.0.0.1:18080/; stop_one port-forward
  kubectl scale deploy/hello --replicas=3 && kubectl rollout status deploy/hello --timeout=180s
  kubectl get pods -o wide; kubectl get endpointslices -l kubernetes.io/service-name=hello
}
case "${1:-start}" in
  start) start ;; stop) stop ;; status) status ;; build) build ;; demo) demo ;;
  clean) stop; rm -rf $VAR $RUN $LOG $PKI $ETC /var/lib/kubelet/device-plugins/kubelet.sock
    find /var/log/containers -maxdepth 1 -lname "$P/*" -delete 2>/dev/null || true   # kubelet's log symlinks
    rmdir /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/s /run/containerd \
      /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni /var/log/containers 2>/dev/null || true ;;
  *) echo "usage: $0 [start|stop|status|build|demo|clean]"; exit 2 ;;
esac
