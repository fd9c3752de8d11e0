package node

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/wisp-faas/wisp/api"
)

// GatewayConfig is the node's gateway configuration file (see
// config/gateway.yaml).
type GatewayConfig struct {
	// Filters run on every Function's requests, with each Function's
	// own, ordered by phase and priority.
	Filters []api.GatewayFilter `json:"filters,omitempty"`
}

// LoadGatewayConfig reads and checks a gateway configuration file.
func LoadGatewayConfig(path string) (GatewayConfig, error) {
	var cfg GatewayConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("gateway config: %w", err)
	}
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(b), &cfg); err != nil {
		return cfg, fmt.Errorf("gateway config %s: %w", path, err)
	}
	for i := range cfg.Filters {
		if ferr := cfg.Filters[i].Validate(nil).ViaFieldIndex("filters", i); ferr != nil {
			return cfg, fmt.Errorf("gateway config %s: %w", path, ferr)
		}
	}
	return cfg, nil
}
