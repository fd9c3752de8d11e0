package api

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// FromKnativeService converts a Knative Service into a Function. It first
// applies Knative's own defaults and validation to a copy of svc, as
// Knative's webhook would on create with the default configuration
// (config-defaults, config-features, config-autoscaler), and returns
// Knative's error, an *apis.FieldError, if svc is invalid.
//
// It maps the name, namespace, labels and annotations; the template's name,
// labels and annotations (autoscaling annotations included); the single
// container (image, command, args, ports[0].containerPort, env) to a
// ContainerSource; containerConcurrency; timeoutSeconds; and the traffic
// (tag, revisionName, latestRevision, percent).
//
// What wisp cannot honour is an error naming the field: more than one
// container, volumes (and so volume mounts, which must name a volume),
// envFrom and env valueFrom. Knative itself rejects init containers, and
// configurationName and url in traffic. Everything else (resources,
// probes, security contexts, service accounts, ...) is ignored.
//
// svc is not modified. The Function is neither defaulted nor validated by
// wisp: call its SetDefaults and Validate.
func FromKnativeService(svc *servingv1.Service) (*Function, error) {
	svc = svc.DeepCopy()
	// Knative's SetDefaults and Validate read their configuration with
	// config.FromContextOrDefaults, so a context without one gets Knative's
	// defaults. WithinCreate selects the create-time rules; an update
	// context would need the previous object as its baseline.
	ctx := apis.WithinCreate(context.Background())
	svc.SetDefaults(ctx)
	if err := svc.Validate(ctx).Filter(apis.ErrorLevel); err != nil {
		return nil, fmt.Errorf("invalid Knative Service %q: %w", svc.Name, err)
	}
	spec, err := fromKnativeRevisionSpec(&svc.Spec.Template.Spec)
	if err != nil {
		return nil, fmt.Errorf("converting Knative Service %q: %w", svc.Name, err.ViaField("spec.template.spec"))
	}
	f := &Function{
		TypeMeta: metav1.TypeMeta{APIVersion: APIVersion, Kind: KindFunction},
		ObjectMeta: metav1.ObjectMeta{
			Name:        svc.Name,
			Namespace:   svc.Namespace,
			Labels:      svc.Labels,
			Annotations: svc.Annotations,
		},
		Spec: FunctionSpec{
			Template: RevisionTemplate{
				Metadata: TemplateMeta{
					Name:        svc.Spec.Template.Name,
					Labels:      svc.Spec.Template.Labels,
					Annotations: svc.Spec.Template.Annotations,
				},
				Spec: *spec,
			},
		},
	}
	// Knative has rejected configurationName (a Service has one
	// Configuration) and url (status only) in the spec's traffic.
	for _, t := range svc.Spec.Traffic {
		f.Spec.Traffic = append(f.Spec.Traffic, TrafficTarget{
			Tag:            t.Tag,
			RevisionName:   t.RevisionName,
			LatestRevision: t.LatestRevision,
			Percent:        t.Percent,
		})
	}
	return f, nil
}

func fromKnativeRevisionSpec(rs *servingv1.RevisionSpec) (*RevisionSpec, *apis.FieldError) {
	var errs *apis.FieldError
	if n := len(rs.Containers); n != 1 {
		errs = errs.Also(unsupported(fmt.Sprintf("%d containers: wisp runs exactly one, without sidecars", n), "containers"))
	}
	if len(rs.Volumes) > 0 {
		errs = errs.Also(unsupported("volumes", "volumes"))
	}
	if errs != nil {
		return nil, errs
	}
	c := rs.Containers[0]
	if len(c.EnvFrom) > 0 {
		errs = errs.Also(unsupported("envFrom: set each variable's value in env", "containers[0].envFrom"))
	}
	var env []EnvVar
	for i, e := range c.Env {
		if e.ValueFrom != nil {
			errs = errs.Also(unsupported("valueFrom: set a plain value", fmt.Sprintf("containers[0].env[%d].valueFrom", i)))
		}
		env = append(env, EnvVar{Name: e.Name, Value: e.Value})
	}
	if errs != nil {
		return nil, errs
	}
	port := DefaultContainerPort
	if len(c.Ports) > 0 { // Knative allows at most one.
		port = c.Ports[0].ContainerPort
	}
	return &RevisionSpec{
		Container: &ContainerSource{
			Image:   c.Image,
			Command: c.Command,
			Args:    c.Args,
			Port:    port,
		},
		Env:                  env,
		ContainerConcurrency: rs.ContainerConcurrency,
		TimeoutSeconds:       rs.TimeoutSeconds,
	}, nil
}

func unsupported(what, path string) *apis.FieldError {
	return &apis.FieldError{Message: "not supported by wisp: " + what, Paths: []string{path}}
}
