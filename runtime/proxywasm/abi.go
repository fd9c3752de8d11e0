package proxywasm

// The numbers of the proxy-wasm ABI v0.2.1 (and v0.2.0, which differs
// only by proxy_get_log_level), from the spec's abi-versions/v0.2.1.

// status is proxy_status_t, what every host function returns.
type status = uint32

const (
	statusOK               status = 0
	statusNotFound         status = 1
	statusBadArgument      status = 2
	statusInvalidMemAccess status = 6
	statusEmpty            status = 7
	statusCasMismatch      status = 8
	statusUnimplemented    status = 12
)

// action is proxy_action_t, what the stream callbacks return.
const (
	actionContinue = 0
	actionPause    = 1
)

// Buffer types (proxy_buffer_type_t).
const (
	bufferHTTPRequestBody      = 0
	bufferHTTPResponseBody     = 1
	bufferHTTPCallResponseBody = 4
	bufferVMConfiguration      = 6
	bufferPluginConfiguration  = 7
)

// Map types (proxy_map_type_t).
const (
	mapRequestHeaders          = 0
	mapRequestTrailers         = 1
	mapResponseHeaders         = 2
	mapResponseTrailers        = 3
	mapHTTPCallResponseHeaders = 6
	mapHTTPCallResponseTrail   = 7
	mapMax                     = 7
)

// Stream types (proxy_stream_type_t).
const (
	streamRequest  = 0
	streamResponse = 1
	streamMax      = 3
)

// Metric types (proxy_metric_type_t).
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
)

// Log levels (proxy_log_level_t).
const (
	logTrace    = 0
	logDebug    = 1
	logInfo     = 2
	logWarn     = 3
	logError    = 4
	logCritical = 5
)

// The exports by which a module declares the ABI it speaks; one is
// required.
var abiVersions = []string{"proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"}
