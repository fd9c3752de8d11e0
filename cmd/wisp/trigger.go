package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wisp-faas/wisp/api"
	"github.com/wisp-faas/wisp/internal/adminclient"
)

func newTriggerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "trigger",
		Aliases: []string{"triggers"},
		Short:   "Create, delete, list and describe event triggers",
	}
	c.AddCommand(newTriggerCreateCmd(g), newTriggerDeleteCmd(g), newTriggerListCmd(g), newTriggerDescribeCmd(g))
	return c
}

// triggerFlags are the flags of trigger create.
type triggerFlags struct {
	subject, stream, sink             string
	createStream                      bool
	filters                           []string
	retry                             int32
	backoff, backoffDelay, backoffMax string
	timeout, deadLetter, reply        string
	maxInFlight                       int32
	noWait                            bool
	waitTimeout                       time.Duration
}

func newTriggerCreateCmd(g *globals) *cobra.Command {
	var tf triggerFlags
	c := &cobra.Command{
		Use:   "create NAME --subject SUBJECT --sink fn:FUNCTION[@TAG]|URL [flags]",
		Short: "Create a trigger: deliver the events of a JetStream subject to a function",
		Long: `Create a trigger: a durable JetStream consumer that delivers the events on
SUBJECT (wildcards allowed) that match every --filter to the sink, as
CloudEvents over HTTP, at least once. Failed deliveries (5xx, 429, 408,
timeouts) are retried with the backoff; other failures and exhausted retries
go to the --dead-letter subject. Without --stream, the stream is named after
the subject's first token (orders.> reads ORDERS) and created if missing.`,
		Example: `  wisp trigger create orders --subject 'orders.>' --sink fn:fulfil --filter type=order.created
  wisp trigger create orders --subject 'orders.>' --sink fn:fulfil --retry 5 --backoff exponential \
    --backoff-delay 1s --dead-letter orders.dlq
  wisp trigger create audit --subject 'orders.*' --sink https://audit.example.com/events --filter 'source^=/shop'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := tf.trigger(cmd, args[0], g.namespace)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			created, err := c.CreateTrigger(ctx, t)
			if err != nil {
				return err
			}
			if tf.noWait {
				fmt.Fprintf(g.out, "Trigger '%s' created in namespace '%s'.\n", created.Name, created.Namespace)
				return nil
			}
			wctx, wcancel := context.WithTimeout(cmd.Context(), tf.waitTimeout)
			defer wcancel()
			if err := waitTriggerReady(wctx, c, created); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "Trigger '%s' created in namespace '%s' and is ready: %s on stream %s to %s.\n",
				created.Name, created.Namespace, created.Spec.Source.Subject, created.Spec.Source.Stream, sinkString(created))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&tf.subject, "subject", "", "JetStream subject to read; * matches a token, a last > the rest (required)")
	f.StringVar(&tf.stream, "stream", "", "JetStream stream to read (default: the subject's first token in upper case, created if missing)")
	f.BoolVar(&tf.createStream, "create-stream", false, "create --stream if it does not exist")
	f.StringVar(&tf.sink, "sink", "", "where events go: fn:FUNCTION, fn:FUNCTION@TAG (ksvc: works too) or an http(s) URL (required)")
	f.StringArrayVar(&tf.filters, "filter", nil, "deliver only events whose attribute or extension matches: KEY=VALUE (exact), KEY^=PREFIX, KEY$=SUFFIX (repeatable; all must match)")
	f.Int32Var(&tf.retry, "retry", api.DefaultRetry, "retries after the first attempt")
	f.StringVar(&tf.backoff, "backoff", api.DefaultBackoffPolicy, "backoff policy: linear (n × delay) or exponential (delay × 2^(n-1))")
	f.StringVar(&tf.backoffDelay, "backoff-delay", api.DefaultBackoffDelay, "base delay of the backoff (1s or PT1S)")
	f.StringVar(&tf.backoffMax, "backoff-max", api.DefaultBackoffMax, "longest backoff delay")
	f.StringVar(&tf.timeout, "timeout", api.DefaultDeliveryTimeout, "how long one delivery attempt may take")
	f.StringVar(&tf.deadLetter, "dead-letter", "", "subject that receives events that failed for good, with the error as extensions")
	f.StringVar(&tf.reply, "reply", "", "subject to publish the sink's reply events to")
	f.Int32Var(&tf.maxInFlight, "max-in-flight", api.DefaultMaxInFlight, "most events delivered at once")
	f.BoolVar(&tf.noWait, "no-wait", false, "return as soon as the trigger is accepted, without waiting for its consumer")
	f.DurationVar(&tf.waitTimeout, "wait-timeout", 30*time.Second, "how long to wait for the trigger to become ready")
	return c
}

// trigger builds the Trigger the flags describe.
func (tf *triggerFlags) trigger(cmd *cobra.Command, name, namespace string) (*api.Trigger, error) {
	if tf.subject == "" {
		return nil, fmt.Errorf("give the subject to read with --subject, e.g. --subject 'orders.>'")
	}
	if tf.sink == "" {
		return nil, fmt.Errorf("give where events go with --sink fn:FUNCTION or --sink URL")
	}
	t := &api.Trigger{}
	t.APIVersion, t.Kind = api.APIVersion, api.KindTrigger
	t.Name, t.Namespace = name, namespace
	s := &t.Spec
	s.Source = api.EventSource{Subject: tf.subject, Stream: tf.stream, CreateStream: tf.createStream}
	var err error
	if s.Sink, err = parseSink(tf.sink); err != nil {
		return nil, err
	}
	if s.Filters, err = parseFilters(tf.filters); err != nil {
		return nil, err
	}
	s.Delivery = api.DeliverySpec{
		Retry: &tf.retry, BackoffPolicy: tf.backoff, BackoffDelay: tf.backoffDelay, BackoffMax: tf.backoffMax,
		Timeout: tf.timeout, DeadLetterSubject: tf.deadLetter,
	}
	s.MaxInFlight, s.ReplySubject = tf.maxInFlight, tf.reply
	return t, nil
}

// parseSink reads --sink: fn:NAME[@TAG] (or ksvc:, function:) or a URL.
func parseSink(s string) (api.Destination, error) {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return api.Destination{URI: s}, nil
	}
	for _, p := range []string{"fn:", "function:", "ksvc:"} {
		if rest, ok := strings.CutPrefix(s, p); ok && rest != "" {
			name, tag, _ := strings.Cut(rest, "@")
			return api.Destination{Ref: &api.FunctionRef{Name: name, Tag: tag}}, nil
		}
	}
	return api.Destination{}, fmt.Errorf("--sink %q: want fn:FUNCTION, fn:FUNCTION@TAG or an http(s):// URL", s)
}

// parseFilters reads --filter KEY=VALUE, KEY^=PREFIX and KEY$=SUFFIX.
func parseFilters(in []string) ([]api.EventFilter, error) {
	var exact, prefix, suffix map[string]string
	add := func(m *map[string]string, k, v string) {
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[k] = v
	}
	for _, f := range in {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--filter %q: want KEY=VALUE, KEY^=PREFIX or KEY$=SUFFIX", f)
		}
		switch {
		case strings.HasSuffix(k, "^"):
			add(&prefix, strings.TrimSuffix(k, "^"), v)
		case strings.HasSuffix(k, "$"):
			add(&suffix, strings.TrimSuffix(k, "$"), v)
		default:
			add(&exact, k, v)
		}
	}
	var out []api.EventFilter
	if exact != nil {
		out = append(out, api.EventFilter{Exact: exact})
	}
	if prefix != nil {
		out = append(out, api.EventFilter{Prefix: prefix})
	}
	if suffix != nil {
		out = append(out, api.EventFilter{Suffix: suffix})
	}
	return out, nil
}

// waitTriggerReady polls a Trigger until the node runs its consumer
// (nil) or says why it cannot (an error), or ctx ends.
func waitTriggerReady(ctx context.Context, c *adminclient.Client, t *api.Trigger) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	msg := "the node has not picked it up yet"
	for {
		cur, _, err := c.GetTrigger(ctx, t.Namespace, t.Name)
		if err != nil {
			return err
		}
		if cond := cur.Status.GetCondition(api.ConditionReady); cond != nil && cur.Status.ObservedGeneration >= cur.Generation {
			switch {
			case cond.IsTrue():
				return nil
			case cond.IsFalse():
				return fmt.Errorf("trigger %s is not ready: %s", t.Name, cond.Message)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("trigger %s did not become ready in time: %s", t.Name, msg)
		case <-tick.C:
		}
	}
}

func newTriggerDeleteCmd(g *globals) *cobra.Command {
	return newDeleteCmd(g, "Trigger", "Delete triggers and their consumers", (*adminclient.Client).DeleteTrigger)
}

func newTriggerListCmd(g *globals) *cobra.Command {
	return newListCmd(g, "triggers", "List triggers", (*adminclient.Client).ListTriggers, printTriggerList)
}

func printTriggerList(t *table, list *api.TriggerList) {
	t.header("NAMESPACE", "NAME", "SUBJECT", "SINK", "PENDING", "DELIVERED", "DEAD-LETTERED", "AGE", "READY", "REASON")
	for _, tr := range list.Items {
		ready, reason := conditionColumns(tr.Status.GetCondition(api.ConditionReady))
		t.row(tr.Namespace, tr.Name, tr.Spec.Source.Subject, sinkString(&tr), fmt.Sprint(tr.Status.Pending),
			fmt.Sprint(tr.Status.Delivered), fmt.Sprint(tr.Status.DeadLettered), age(tr.CreationTimestamp.Time), ready, reason)
	}
}

func newTriggerDescribeCmd(g *globals) *cobra.Command {
	return newDescribeCmd(g, "Show a trigger: source, filters, sink, delivery and its consumer's state", (*adminclient.Client).GetTrigger, describeTrigger)
}

func describeTrigger(t *table, tr *api.Trigger) {
	s, st := &tr.Spec, &tr.Status
	t.line("Name", tr.Name)
	t.line("Namespace", tr.Namespace)
	t.line("Age", age(tr.CreationTimestamp.Time))
	t.line("Source", fmt.Sprintf("stream %s, subject %s", s.Source.Stream, s.Source.Subject))
	t.line("Sink", sinkString(tr))
	for _, f := range s.Filters {
		for _, d := range []struct {
			op string
			m  map[string]string
		}{{"=", f.Exact}, {"^=", f.Prefix}, {"$=", f.Suffix}} {
			for k, v := range d.m {
				t.line("Filter", k+d.op+v)
			}
		}
	}
	d := s.Delivery
	retry := int32(0)
	if d.Retry != nil {
		retry = *d.Retry
	}
	t.line("Delivery", fmt.Sprintf("retry %d, %s backoff from %s up to %s, timeout %s, max in flight %d",
		retry, d.BackoffPolicy, d.BackoffDelay, d.BackoffMax, d.Timeout, s.MaxInFlight))
	if d.DeadLetterSubject != "" {
		t.line("Dead letters", d.DeadLetterSubject)
	}
	if s.ReplySubject != "" {
		t.line("Replies", s.ReplySubject)
	}
	fmt.Fprintln(t.w)
	t.line("Consumer", st.Consumer)
	t.line("Pending", st.Pending)
	t.line("Ack pending", st.AckPending)
	t.line("Redelivered", st.Redelivered)
	t.line("Delivered", st.Delivered)
	t.line("Dead-lettered", st.DeadLettered)
	if st.LastError != "" {
		when := ""
		if st.LastErrorTime != nil {
			when = " (" + age(st.LastErrorTime.Time) + " ago)"
		}
		t.line("Last error", st.LastError+when)
	}
	fmt.Fprintln(t.w)
	fmt.Fprintln(t.w, "Conditions:")
	for _, c := range st.Conditions {
		fmt.Fprintf(t.w, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
}

// sinkString renders a trigger's sink as --sink takes it.
func sinkString(tr *api.Trigger) string {
	if ref := tr.Spec.Sink.Ref; ref != nil {
		if ref.Tag != "" {
			return "fn:" + ref.Name + "@" + ref.Tag
		}
		return "fn:" + ref.Name
	}
	return tr.Spec.Sink.URI
}

// applyTriggers creates each trigger, or updates the stored one to its
// spec, labels and annotations, retrying on conflicts.
func applyTriggers(ctx context.Context, g *globals, c *adminclient.Client, trs []*api.Trigger) error {
	for _, t := range trs {
		if t.Namespace == "" {
			t.Namespace = g.namespace
		}
		verb, err := applyTrigger(ctx, c, t)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		fmt.Fprintf(g.out, "Trigger '%s' %s in namespace '%s'.\n", t.Name, verb, t.Namespace)
	}
	return nil
}

func applyTrigger(ctx context.Context, c *adminclient.Client, t *api.Trigger) (string, error) {
	for attempt := 0; ; attempt++ {
		cur, _, err := c.GetTrigger(ctx, t.Namespace, t.Name)
		if adminclient.IsNotFound(err) {
			_, err = c.CreateTrigger(ctx, t)
			if adminclient.IsAlreadyExists(err) && attempt < 5 {
				continue
			}
			return "created", err
		}
		if err != nil {
			return "", err
		}
		next := cur.DeepCopy()
		next.Spec, next.Labels, next.Annotations = t.Spec, t.Labels, t.Annotations
		next.SetDefaults()
		if reflect.DeepEqual(next.Spec, cur.Spec) && reflect.DeepEqual(next.Labels, cur.Labels) && reflect.DeepEqual(next.Annotations, cur.Annotations) {
			return "unchanged", nil
		}
		_, err = c.UpdateTrigger(ctx, next)
		if adminclient.IsConflict(err) && attempt < 5 {
			continue
		}
		return "configured", err
	}
}
