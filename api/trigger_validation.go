package api

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/pkg/apis"
)

// Defaults and bounds of a Trigger. The retry count and timeout are those
// of Knative's NATS JetStream broker; the delay of OpenFaaS's retries is
// shortened to what a function on one node needs.
const (
	// DefaultRetry is the number of retries when none is given.
	DefaultRetry int32 = 3
	// MaxRetry is the most retries accepted.
	MaxRetry int32 = 100
	// DefaultBackoffPolicy is the backoff policy when none is given.
	DefaultBackoffPolicy = BackoffExponential
	// DefaultBackoffDelay is the base backoff delay when none is given.
	DefaultBackoffDelay = "1s"
	// DefaultBackoffMax caps backoff delays when no cap is given.
	DefaultBackoffMax = "1m"
	// DefaultDeliveryTimeout bounds one delivery attempt when no timeout is given.
	DefaultDeliveryTimeout = "30s"
	// DefaultMaxInFlight bounds the events of one Trigger being delivered
	// at once when no bound is given.
	DefaultMaxInFlight int32 = 100
	// MaxMaxInFlight is the largest MaxInFlight accepted.
	MaxMaxInFlight int32 = 10000
)

var (
	streamNameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	ceAttributeRE  = regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	isoDurationRE  = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)
	subjectTokenRE = regexp.MustCompile(`^[^\s.*>]+$`)
)

// ParseEventDuration parses a duration of a DeliverySpec: ISO 8601 with
// days, hours, minutes and seconds ("PT1.5S", "P1DT2H"), as Knative
// Eventing writes them, or a Go duration ("1.5s", "2m").
func ParseEventDuration(s string) (time.Duration, error) {
	if !strings.HasPrefix(s, "P") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: want ISO 8601 (PT1S) or Go (1s)", s)
		}
		return d, nil
	}
	m := isoDurationRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration such as PT1S or P1DT2H", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", s, err)
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		sec, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		d += time.Duration(sec * float64(time.Second))
	}
	return d, nil
}

// DefaultStreamName is the stream a Trigger without source.stream reads:
// the subject's first token in upper case ("orders.>" → "ORDERS"), or ""
// when that token is a wildcard.
func DefaultStreamName(subject string) string {
	first, _, _ := strings.Cut(subject, ".")
	if first == "" || first == "*" || first == ">" || !streamNameRE.MatchString(first) {
		return ""
	}
	return strings.ToUpper(first)
}

// SetDefaults fills in what a Trigger may leave out: apiVersion, kind,
// namespace, source.stream (DefaultStreamName, with createStream), the
// delivery policy (DefaultRetry, DefaultBackoffPolicy, DefaultBackoffDelay,
// DefaultBackoffMax, DefaultDeliveryTimeout) and maxInFlight
// (DefaultMaxInFlight). SetDefaults is idempotent.
func (t *Trigger) SetDefaults() {
	if t.APIVersion == "" {
		t.APIVersion = APIVersion
	}
	if t.Kind == "" {
		t.Kind = KindTrigger
	}
	if t.Namespace == "" {
		t.Namespace = DefaultNamespace
	}
	s := &t.Spec
	if s.Source.Stream == "" {
		if s.Source.Stream = DefaultStreamName(s.Source.Subject); s.Source.Stream != "" {
			s.Source.CreateStream = true
		}
	}
	d := &s.Delivery
	if d.Retry == nil {
		d.Retry = new(DefaultRetry)
	}
	if d.BackoffPolicy == "" {
		d.BackoffPolicy = DefaultBackoffPolicy
	}
	if d.BackoffDelay == "" {
		d.BackoffDelay = DefaultBackoffDelay
	}
	if d.BackoffMax == "" {
		d.BackoffMax = DefaultBackoffMax
	}
	if d.Timeout == "" {
		d.Timeout = DefaultDeliveryTimeout
	}
	if s.MaxInFlight == 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
}

// Validate checks a Trigger, with or without defaults applied. Every error
// names its field path, e.g. "spec.delivery.backoffDelay".
func (t *Trigger) Validate() *apis.FieldError {
	errs := validateTypeMeta(t.APIVersion, t.Kind, KindTrigger)
	switch msgs := validation.IsDNS1035Label(t.Name); {
	case t.Name == "":
		errs = errs.Also(apis.ErrMissingField("metadata.name"))
	case len(msgs) > 0:
		errs = errs.Also(apis.ErrInvalidValue(t.Name, "metadata.name", msgs...))
	}
	errs = errs.Also(validateNamespace(t.Namespace).ViaField("metadata"))
	s := &t.Spec
	errs = errs.Also(s.Source.validate().ViaField("spec.source"))
	for i := range s.Filters {
		errs = errs.Also(s.Filters[i].validate().ViaFieldIndex("spec.filters", i))
	}
	errs = errs.Also(s.Sink.validate().ViaField("spec.sink"))
	errs = errs.Also(s.Delivery.validate().ViaField("spec.delivery"))
	if s.MaxInFlight < 0 || s.MaxInFlight > MaxMaxInFlight {
		errs = errs.Also(apis.ErrOutOfBoundsValue(s.MaxInFlight, 0, MaxMaxInFlight, "spec.maxInFlight"))
	}
	if s.ReplySubject != "" {
		errs = errs.Also(validateSubject(s.ReplySubject, false, "spec.replySubject"))
	}
	return errs
}

// ValidateUpdate checks t as a replacement of old: t must be valid and
// keep old's name and namespace.
func (t *Trigger) ValidateUpdate(old *Trigger) *apis.FieldError {
	errs := t.Validate()
	errs = errs.Also(validateImmutable(old.Name, t.Name, "metadata.name"))
	return errs.Also(validateImmutable(old.Namespace, t.Namespace, "metadata.namespace"))
}

func (s *EventSource) validate() *apis.FieldError {
	var errs *apis.FieldError
	if s.Subject == "" {
		errs = errs.Also(apis.ErrMissingField("subject"))
	} else {
		errs = errs.Also(validateSubject(s.Subject, true, "subject"))
	}
	switch {
	case s.Stream == "" && s.Subject != "" && DefaultStreamName(s.Subject) == "":
		errs = errs.Also(&apis.FieldError{
			Message: "missing field(s)",
			Paths:   []string{"stream"},
			Details: "a subject that starts with a wildcard names no stream: give the stream to read",
		})
	case s.Stream != "" && !streamNameRE.MatchString(s.Stream):
		errs = errs.Also(apis.ErrInvalidValue(s.Stream, "stream", "want 1 to 128 letters, digits, '-' and '_'"))
	}
	return errs
}

// validateSubject checks a NATS subject: dot-separated tokens without
// whitespace; with wildcards, a token may be "*", and the last one ">".
func validateSubject(subject string, wildcards bool, field string) *apis.FieldError {
	tokens := strings.Split(subject, ".")
	for i, tok := range tokens {
		switch {
		case wildcards && tok == "*", wildcards && tok == ">" && i == len(tokens)-1:
		case subjectTokenRE.MatchString(tok):
		case !wildcards && (strings.Contains(tok, "*") || strings.Contains(tok, ">")):
			return apis.ErrInvalidValue(subject, field, "want a subject without wildcards")
		default:
			return apis.ErrInvalidValue(subject, field,
				"want a NATS subject: tokens separated by '.', without spaces; '*' matches one token and a last '>' the rest")
		}
	}
	return nil
}

func (f *EventFilter) validate() *apis.FieldError {
	var errs *apis.FieldError
	var set []string
	for _, d := range []struct {
		name string
		m    map[string]string
	}{{"exact", f.Exact}, {"prefix", f.Prefix}, {"suffix", f.Suffix}} {
		if len(d.m) == 0 {
			continue
		}
		set = append(set, d.name)
		for k := range d.m {
			if !ceAttributeRE.MatchString(k) {
				errs = errs.Also(apis.ErrInvalidKeyName(k, d.name,
					"want a CloudEvents attribute or extension name: 1 to 20 lowercase letters and digits"))
			}
		}
	}
	switch len(set) {
	case 0:
		errs = errs.Also(apis.ErrMissingOneOf("exact", "prefix", "suffix"))
	case 1:
	default:
		errs = errs.Also(apis.ErrMultipleOneOf(set...))
	}
	return errs
}

func (d *Destination) validate() *apis.FieldError {
	switch {
	case d.Ref == nil && d.URI == "":
		return apis.ErrMissingOneOf("ref", "uri")
	case d.Ref != nil && d.URI != "":
		return apis.ErrMultipleOneOf("ref", "uri")
	case d.Ref != nil:
		errs := validateFunctionName(d.Ref.Name).ViaField("ref")
		if tag := d.Ref.Tag; tag != "" {
			if msgs := validation.IsDNS1035Label(tag); len(msgs) > 0 {
				errs = errs.Also(apis.ErrInvalidValue(tag, "ref.tag", msgs...))
			}
		}
		return errs
	}
	u, err := url.Parse(d.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return apis.ErrInvalidValue(d.URI, "uri", "want an absolute http:// or https:// URL")
	}
	return nil
}

func (d *DeliverySpec) validate() *apis.FieldError {
	var errs *apis.FieldError
	if d.Retry != nil && (*d.Retry < 0 || *d.Retry > MaxRetry) {
		errs = errs.Also(apis.ErrOutOfBoundsValue(*d.Retry, 0, MaxRetry, "retry"))
	}
	switch d.BackoffPolicy {
	case "", BackoffLinear, BackoffExponential:
	default:
		errs = errs.Also(apis.ErrInvalidValue(d.BackoffPolicy, "backoffPolicy",
			fmt.Sprintf("want %q or %q", BackoffLinear, BackoffExponential)))
	}
	durations := map[string]time.Duration{}
	for _, f := range []struct{ name, value string }{
		{"backoffDelay", d.BackoffDelay}, {"backoffMax", d.BackoffMax}, {"timeout", d.Timeout},
	} {
		if f.value == "" {
			continue
		}
		v, err := ParseEventDuration(f.value)
		switch {
		case err != nil:
			errs = errs.Also(apis.ErrInvalidValue(f.value, f.name, err.Error()))
		case v < 0, v == 0 && f.name == "timeout":
			errs = errs.Also(apis.ErrInvalidValue(f.value, f.name, "want a positive duration"))
		default:
			durations[f.name] = v
		}
	}
	if to, ok := durations["timeout"]; ok && to > time.Duration(MaxTimeoutSeconds)*time.Second {
		errs = errs.Also(apis.ErrInvalidValue(d.Timeout, "timeout", fmt.Sprintf("at most %ds, the longest a function may run", MaxTimeoutSeconds)))
	}
	delay, okDelay := durations["backoffDelay"]
	if maxDelay, ok := durations["backoffMax"]; ok && okDelay && maxDelay < delay {
		errs = errs.Also(apis.ErrInvalidValue(d.BackoffMax, "backoffMax", "want at least backoffDelay"))
	}
	if d.DeadLetterSubject != "" {
		errs = errs.Also(validateSubject(d.DeadLetterSubject, false, "deadLetterSubject"))
	}
	return errs
}
