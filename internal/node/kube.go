package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wisp-faas/wisp/controller/leader"
	"github.com/wisp-faas/wisp/controller/store/kube"
)

// kubeMode is what a node in Kubernetes mode holds: the store on the
// apiserver and its part in the leader election.
type kubeMode struct {
	store    *kube.Store
	elector  *leader.Elector
	host     string
	identity string
	lead     atomic.Pointer[func()]
}

// onLead sets what runs each time this node starts leading.
func (k *kubeMode) onLead(f func()) { k.lead.Store(&f) }

// Retry bounds for reaching the apiserver at start.
const (
	kubeRetryMin = time.Second
	kubeRetryMax = 30 * time.Second
)

// RESTConfig returns the client configuration that cfg names: the
// kubeconfig file and context, or $KUBECONFIG / ~/.kube/config, or the
// in-cluster configuration of a Pod when none of them exists.
func RESTConfig(cfg KubernetesConfig) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: cfg.Context})
	rc, err := loader.ClientConfig()
	if err != nil && cfg.Kubeconfig == "" && cfg.Context == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		where := "the in-cluster configuration or $KUBECONFIG"
		if cfg.Kubeconfig != "" {
			where = cfg.Kubeconfig
		}
		return nil, fmt.Errorf("Kubernetes client configuration from %s: %w (pass --kubeconfig FILE and --context NAME)", where, err)
	}
	if cfg.QPS > 0 {
		rc.QPS = cfg.QPS
	}
	if cfg.Burst > 0 {
		rc.Burst = cfg.Burst
	}
	rc.UserAgent = "wisp-node"
	return rc, nil
}

// openKubernetes connects to the cluster, retrying while the apiserver
// does not answer or lacks wisp's CRDs (each failure logged with what to
// do), and prepares the election.
func openKubernetes(ctx context.Context, cfg KubernetesConfig, log *slog.Logger) (*kubeMode, error) {
	rc, err := RESTConfig(cfg)
	if err != nil {
		return nil, err
	}
	name := cfg.NodeName
	if name == "" {
		name = os.Getenv("POD_NAME")
	}
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("node name: %w (pass --node-name)", err)
		}
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	k := &kubeMode{host: rc.Host, identity: strings.ToLower(name) + "_" + hex.EncodeToString(suffix)}
	wait := kubeRetryMin
	for {
		err = k.open(ctx, rc, cfg, log)
		if err == nil {
			return k, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("starting in Kubernetes mode: %w", err)
		}
		log.Error("cannot start in Kubernetes mode; retrying", "in", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("starting in Kubernetes mode: %w", errors.Join(err, ctx.Err()))
		}
		wait = min(2*wait, kubeRetryMax)
	}
}

func (k *kubeMode) open(ctx context.Context, rc *rest.Config, cfg KubernetesConfig, log *slog.Logger) error {
	st, err := kube.New(ctx, rc, kube.Options{Log: log.With("component", "store")})
	if err != nil {
		return err
	}
	el, err := leader.New(ctx, leader.Options{
		Config: rc, Namespace: cfg.LeaseNamespace, Identity: k.identity,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: scaled(cfg.LeaseDuration, 10), RetryPeriod: scaled(cfg.LeaseDuration, 2),
		Log: log,
		OnStart: func() {
			if f := k.lead.Load(); f != nil {
				(*f)()
			}
		},
	})
	if err != nil {
		return err
	}
	k.store, k.elector = st, el
	return nil
}

// scaled keeps client-go's ratios of renew deadline (10 s) and retry
// period (2 s) to lease duration (15 s) for another lease duration, so
// that a shorter lease also fails over sooner: a follower notices an
// expired Lease within one retry period.
func scaled(lease time.Duration, of15 time.Duration) time.Duration {
	if lease <= 0 {
		return 0
	}
	return lease * of15 / 15
}
