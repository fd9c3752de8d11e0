package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedGatewayConfigLoads(t *testing.T) {
	cfg, err := LoadGatewayConfig("../../config/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Filters) != 2 || cfg.Filters[1].RateLimit == nil || cfg.Filters[1].RateLimit.Key != "client-ip" {
		t.Errorf("config/gateway.yaml read as %+v", cfg.Filters)
	}
}

func TestGatewayConfigErrorsNameTheField(t *testing.T) {
	for body, want := range map[string]string{
		"filters:\n- fault: {abort: {percentage: 5, httpStatus: 200}}\n": "filters[0].fault.abort.httpStatus",
		"filters:\n- mirror: {revisionName: a-00001}\n":                  "global filter cannot mirror",
		"filter: []\n": `unknown field "filter"`,
	} {
		p := filepath.Join(t.TempDir(), "gw.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadGatewayConfig(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", body, err, want)
		}
	}
}
