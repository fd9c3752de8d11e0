package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

func newEventCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "event",
		Short: "Send CloudEvents to the node's JetStream",
	}
	c.AddCommand(newEventSendCmd(g))
	return c
}

func newEventSendCmd(g *globals) *cobra.Command {
	var typ, source, id, data, contentType, ceSubject string
	var insecure bool
	var extensions []string
	c := &cobra.Command{
		Use:   "send SUBJECT --type TYPE [--source SOURCE] [--id ID] [--data DATA|@FILE|@-] [flags]",
		Short: "Publish a CloudEvent on a JetStream subject through the gateway",
		Long: `Publish a CloudEvent on SUBJECT: the event goes to the gateway's /events/SUBJECT
in binary mode and is stored by the JetStream stream that captures SUBJECT.
The id defaults to a new UUID; sending the same source and id again within
two minutes is recognised as a duplicate.`,
		Example: `  wisp event send orders.eu --type order.created --source /shop --data '{"id":42}'
  wisp event send orders.eu --type order.created --source /shop --id order-42 --extension region=eu`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject := args[0]
			if typ == "" {
				return fmt.Errorf("give the event's type with --type")
			}
			ev := event.New()
			ev.SetType(typ)
			ev.SetSource(source)
			ev.SetID(id)
			if id == "" {
				ev.SetID(uuid.NewString())
			}
			if ceSubject != "" {
				ev.SetSubject(ceSubject)
			}
			for _, x := range extensions {
				k, v, ok := strings.Cut(x, "=")
				if !ok || k == "" {
					return fmt.Errorf("--extension %q: want NAME=VALUE", x)
				}
				ev.SetExtension(k, v)
			}
			body, err := readData(g, data)
			if err != nil {
				return err
			}
			if body != nil {
				if err := ev.SetData(contentType, body); err != nil {
					return fmt.Errorf("--data: %w", err)
				}
			}
			if err := ev.Validate(); err != nil {
				return fmt.Errorf("invalid event: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd.Context())
			defer cancel()
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, info.GatewayURL+"/events/"+url.PathEscape(subject), nil)
			if err != nil {
				return fmt.Errorf("building the request: %w", err)
			}
			if err := cehttp.WriteRequest(ctx, binding.ToMessage(&ev), req); err != nil {
				return fmt.Errorf("encoding the event: %w", err)
			}
			client := http.DefaultClient
			if insecure {
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("sending the event through the gateway at %s (-k skips verifying its certificate): %w", info.GatewayURL, err)
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("the gateway answered %s: %s", resp.Status, strings.TrimSpace(string(answer)))
			}
			fmt.Fprintf(g.out, "Event '%s' sent to '%s'.\n", ev.ID(), subject)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&typ, "type", "", "the event's type, e.g. order.created (required)")
	f.StringVar(&source, "source", "/wisp/cli", "the event's source")
	f.StringVar(&id, "id", "", "the event's id (default: a new UUID)")
	f.StringVar(&ceSubject, "ce-subject", "", "the event's subject attribute")
	f.StringVarP(&data, "data", "d", "", "the event's data; @FILE reads a file, @- standard input")
	f.StringVar(&contentType, "content-type", "application/json", "the data's content type")
	f.StringArrayVar(&extensions, "extension", nil, "extension attribute NAME=VALUE (repeatable)")
	f.BoolVarP(&insecure, "insecure", "k", false, "do not verify the gateway's TLS certificate (a self-signed one)")
	return c
}

// readData reads --data: literal text, @FILE or @- (standard input); nil
// when empty.
func readData(g *globals, data string) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case data == "@-":
		b, err := io.ReadAll(g.in)
		if err != nil {
			return nil, fmt.Errorf("--data @-: %w", err)
		}
		return b, nil
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, fmt.Errorf("--data %s: %w", data, err)
		}
		return b, nil
	}
	return []byte(data), nil
}
