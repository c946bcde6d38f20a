{{/* Labels on every object (the same as in the kustomize base). */}}
{{- define "clc.labels" -}}
app.kubernetes.io/name: cloud-lb-controller
app.kubernetes.io/part-of: cloud-lb-controller
{{- end }}

{{/* The pods' labels, which the Deployment and the PodDisruptionBudget select. */}}
{{- define "clc.selector" -}}
app.kubernetes.io/name: cloud-lb-controller
app.kubernetes.io/component: controller
{{- end }}
