#!/usr/bin/env python3
"""Renders Kubernetes manifests for N `cdc` pipelines from one list (Python 3.8+, stdlib only).

    python3 deploy/kubernetes/render.py LIST.json --out DIR     # writes DIR/<name>.yaml ...
    python3 deploy/kubernetes/render.py LIST.json --out DIR --check   # exit 1 if DIR differs

For every pipeline of the list: a ConfigMap with the pipeline file and a Deployment
(replicas 1, strategy Recreate) that runs `cdc run` on it, with liveness on /healthz and
readiness on /readyz of the metrics port, Prometheus scrape annotations, passwords from a
Secret through environment variables, and the state in an object store (no volume but the
ConfigMap's). Optionally one PodMonitor for all of them. See deploy/kubernetes/README.md
for the list's format and docs/operating.md ("Many pipelines") for how to run them.

The pipeline file of each entry is the operator's Flink-CDC-style YAML *without* its
`pipeline:` block: this script writes that block, so that the name, the state location and
the metrics port the probes use can never disagree with the Deployment:

    pipeline:
      name: <name>
      state.dir: <stateUrl>/<name>
      metrics.port: <metricsPort>
      metrics.address: 0.0.0.0
      <the entry's "pipeline" options>

Every `${NAME}` in the file becomes an environment variable of the container: the entry's
"env" gives plain values, everything else comes from the entry's Secret (key NAME).
"""

import argparse
import hashlib
import json
import os
import re
import sys

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
# `${NAME}` as the engine substitutes it (`$${` is a literal `${`).
REF_RE = re.compile(r"(?<!\$)\$\{([^}]*)\}")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOP_LEVEL_PIPELINE_RE = re.compile(r"""^["']?pipeline["']?[ \t]*:""", re.MULTILINE)
# Options this script owns in the pipeline block.
OWNED = ("name", "state.dir", "metrics.port", "metrics.address")
CONFIG_PATH = "/etc/cdc"
CONFIG_FILE = "pipeline.yaml"
USER_ID = 65532  # distroless "nonroot", as the Dockerfile's USER

# Sized from the measured peak RSS in docs/performance.md (2026-12-07): 33.8 MB (at-least-
# once) and 39.1 MB (exactly-once) streaming 1000 changes/s into Doris; 58.8 MB for a
# 10M-row snapshot and 80.2 MB for a 50-column one into the counting sink; 102.8 MB for a
# 1M-row snapshot and 104.9 MB for a 1M-change catch-up into Doris (the largest figure).
# The request covers that peak, the limit leaves room for wider rows, more tables and the
# sink's buffers (sink.buffer-flush.max-bytes per table, pre-committed early beyond
# max-bytes x (sink.flush.queue-size + 1) in all). CPU: catch-up decodes 3.2M rows/s on one
# core there; a pipeline rarely needs a whole core, and no CPU limit avoids throttling
# during a snapshot.
DEFAULT_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


class ListError(Exception):
    """A problem with the list or a pipeline file, said to the operator."""


# ---------------------------------------------------------------------------------------
# A small YAML writer for the structures below (mappings, sequences, strings, numbers,
# booleans): strings are plain only when no YAML reader can take them for anything else,
# otherwise double-quoted (JSON's escapes are valid YAML); multi-line text (the pipeline
# file) is a literal block, so it reads in `kubectl get configmap -o yaml` as written.

_PLAIN_RE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*(:[A-Za-z0-9_./-]+)*$")
_RESERVED = {
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
}


def _scalar(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if _PLAIN_RE.match(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value, ensure_ascii=False)
    raise ListError("cannot write %r as YAML" % (value,))


def _literal_ok(text):
    if "\r" in text or text.startswith((" ", "\n")) or text.strip() == "":
        return False
    return all(c in "\t\n" or (ord(c) >= 0x20 and ord(c) != 0x7F) for c in text)


def _literal(text, indent):
    stripped = text.rstrip("\n")
    trailing = len(text) - len(stripped)
    chomp = {0: "-", 1: ""}.get(trailing, "+")
    pad = " " * indent
    lines = [(pad + line) if line else "" for line in stripped.split("\n")]
    lines += [""] * (trailing - 1 if trailing > 1 else 0)
    return "|" + chomp, lines


def _emit(value, indent, out):
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            raise ListError("empty mapping")
        for key, item in value.items():
            head = pad + _scalar(key) + ":"
            if isinstance(item, (dict, list)) and item:
                out.append(head)
                _emit(item, indent + 2 if isinstance(item, dict) else indent, out)
            elif isinstance(item, str) and "\n" in item and _literal_ok(item):
                indicator, lines = _literal(item, indent + 2)
                out.append(head + " " + indicator)
                out.extend(lines)
            elif isinstance(item, (dict, list)):
                out.append(head + (" {}" if isinstance(item, dict) else " []"))
            else:
                out.append(head + " " + _scalar(item))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                sub = []
                _emit(item, indent + 2, sub)
                out.append(pad + "- " + sub[0][indent + 2:])
                out.extend(sub[1:])
            elif isinstance(item, list) and item:
                raise ListError("nested sequences are not written")
            else:
                out.append(pad + "- " + _scalar(item))
    else:
        out.append(pad + _scalar(value))


def to_yaml(documents):
    out = []
    for doc in documents:
        out.append("---")
        _emit(doc, 0, out)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------


def _labels(name):
    return {
        "app.kubernetes.io/name": "cdc",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "pipeline",
        # A plain `pipeline` label: Prometheus' usual pod scrape config (labelmap of
        # __meta_kubernetes_pod_label_*) and the PodMonitor's podTargetLabels turn it
        # into the `pipeline` label the dashboard and the alerts select on.
        "pipeline": name,
    }


def _strip_comments(text):
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))


def _pipeline_text(entry, source_text, settings):
    name = entry["name"]
    if TOP_LEVEL_PIPELINE_RE.search(source_text):
        raise ListError(
            "%s: leave the `pipeline:` block out of the file: render.py writes it (name, "
            "state.dir, metrics.port, metrics.address); put other pipeline options under "
            '"pipeline" in the list entry' % entry["file"]
        )
    if source_text.lstrip().startswith("{"):
        raise ListError("%s: write the file in block style, not as one flow mapping" % entry["file"])
    options = entry.get("pipeline", {})
    if not isinstance(options, dict):
        raise ListError('%s: "pipeline" must be a mapping of options' % name)
    for key, value in options.items():
        if key in OWNED:
            raise ListError(
                '%s: "pipeline" must not set %s: render.py sets it (see the list\'s '
                "stateUrl and metricsPort)" % (name, key)
            )
        if isinstance(value, (dict, list)) or value is None:
            raise ListError("%s: pipeline option %s must be a string, number or boolean" % (name, key))
    block = {
        "name": name,
        "state.dir": settings["stateUrl"].rstrip("/") + "/" + name,
        "metrics.port": settings["metricsPort"],
        "metrics.address": "0.0.0.0",
    }
    block.update(options)
    lines = []
    _emit({"pipeline": block}, 0, lines)
    text = source_text if source_text.endswith("\n") else source_text + "\n"
    return (
        text
        + "\n# Written by deploy/kubernetes/render.py: the name, the state in the object store\n"
        + "# and the metrics port the probes and Prometheus use.\n"
        + "\n".join(lines)
        + "\n"
    )


def _env(entry, text):
    name = entry["name"]
    plain = entry.get("env", {})
    if not isinstance(plain, dict):
        raise ListError('%s: "env" must map variable names to values' % name)
    secret = entry.get("secret", "cdc-" + name)
    refs = []
    for ref in REF_RE.findall(_strip_comments(text)):
        if ref.startswith("file:"):
            raise ListError(
                "%s: ${%s}: the manifests mount no secret files; use ${NAME} with a key "
                "of the Secret %s" % (entry["file"], ref, secret)
            )
        if not ENV_NAME_RE.match(ref):
            raise ListError("%s: '${%s}' is not an environment variable reference" % (entry["file"], ref))
        if ref not in refs:
            refs.append(ref)
    env = []
    for var in refs:
        if var in plain:
            env.append({"name": var, "value": str(plain[var])})
        else:
            env.append({
                "name": var,
                "valueFrom": {"secretKeyRef": {"name": secret, "key": var}},
            })
    for var in plain:
        if var not in refs:
            raise ListError('%s: "env" names %s, which the pipeline file does not use' % (name, var))
    return env


def render_pipeline(entry, settings, base_dir):
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ListError(
            "pipeline name %r: 1 to 40 characters, lowercase letters, digits and '-' "
            "(it names the Deployment, the ConfigMap and the state prefix)" % (name,)
        )
    if "file" not in entry:
        raise ListError('%s: "file" (the pipeline file) is missing' % name)
    unknown = set(entry) - {"name", "file", "secret", "env", "pipeline", "resources"}
    if unknown:
        raise ListError("%s: unknown keys %s" % (name, ", ".join(sorted(unknown))))
    path = os.path.join(base_dir, entry["file"])
    try:
        with open(path, encoding="utf-8") as f:
            source_text = f.read()
    except OSError as e:
        raise ListError("%s: cannot read %s: %s" % (name, path, e.strerror))
    text = _pipeline_text(entry, source_text, settings)
    env = _env(entry, text)
    port = settings["metricsPort"]
    labels = _labels(name)
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    full_name = "cdc-" + name
    meta = {"name": full_name, "namespace": settings["namespace"], "labels": labels}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {CONFIG_FILE: text},
    }
    probe = {"periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    container = {
        "name": "cdc",
        "image": settings["image"],
        "imagePullPolicy": "IfNotPresent",
        "args": ["run", CONFIG_PATH + "/" + CONFIG_FILE, "--progress", "never"],
    }
    if env:
        container["env"] = env
    container["envFrom"] = [{"secretRef": {"name": settings["awsSecret"]}}]
    container.update({
        "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        # The process answers: restart it when it does not.
        "livenessProbe": dict({"httpGet": {"path": "/healthz", "port": "metrics"}}, **probe),
        # A run reads and checkpoints keep coming (503 while starting, waiting to
        # restart, or when checkpoints stall).
        "readinessProbe": dict({"httpGet": {"path": "/readyz", "port": "metrics"}}, **probe),
        "resources": entry.get("resources", settings["resources"]),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "pipeline", "mountPath": CONFIG_PATH, "readOnly": True}],
    })
    pod_spec = {
        "automountServiceAccountToken": False,
        # SIGTERM makes `cdc` take a final checkpoint and exit 0; give it time.
        "terminationGracePeriodSeconds": 120,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        # The pipeline file only: the state lives in the object store.
        "volumes": [{"name": "pipeline", "configMap": {"name": full_name}}],
    }
    if settings.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = settings["serviceAccountName"]
        # An IAM role for the service account needs its token.
        pod_spec["automountServiceAccountToken"] = True
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            # One run per pipeline: two would fence each other through the state's owner
            # epoch, and Recreate stops the old pod before the new one starts.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                        # A changed pipeline file rolls the pod.
                        "cdc/pipeline-sha256": digest,
                    },
                },
                "spec": pod_spec,
            },
        },
    }
    return to_yaml([config_map, deployment])


def render_pod_monitor(settings):
    return to_yaml([{
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": "cdc",
            "namespace": settings["namespace"],
            "labels": {"app.kubernetes.io/name": "cdc"},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "cdc"}},
            "podTargetLabels": ["pipeline"],
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        },
    }])


def render(list_path):
    """Returns {file name: text} for the list at `list_path`."""
    try:
        with open(list_path, encoding="utf-8") as f:
            spec = json.load(f)
    except OSError as e:
        raise ListError("cannot read %s: %s" % (list_path, e.strerror))
    except ValueError as e:
        raise ListError("%s: not valid JSON: %s" % (list_path, e))
    if not isinstance(spec, dict):
        raise ListError("%s: the list must be a JSON object" % list_path)
    known = {"namespace", "image", "stateUrl", "awsSecret", "metricsPort", "resources",
             "serviceAccountName", "podMonitor", "pipelines"}
    unknown = set(spec) - known
    if unknown:
        raise ListError("%s: unknown keys %s" % (list_path, ", ".join(sorted(unknown))))
    for key in ("image", "stateUrl", "pipelines"):
        if key not in spec:
            raise ListError('%s: "%s" is missing' % (list_path, key))
    if not str(spec["stateUrl"]).startswith("s3://"):
        raise ListError(
            '%s: "stateUrl" must be an s3://bucket/prefix URL: a pod keeps no local state, '
            "so a replacement pod resumes from the object store" % list_path
        )
    port = spec.get("metricsPort", 9249)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ListError('%s: "metricsPort" must be a port number' % list_path)
    settings = {
        "namespace": spec.get("namespace", "cdc"),
        "image": spec["image"],
        "stateUrl": spec["stateUrl"],
        "awsSecret": spec.get("awsSecret", "cdc-aws"),
        "metricsPort": port,
        "resources": spec.get("resources", DEFAULT_RESOURCES),
        "serviceAccountName": spec.get("serviceAccountName"),
    }
    pipelines = spec["pipelines"]
    if not isinstance(pipelines, list) or not pipelines:
        raise ListError('%s: "pipelines" must be a non-empty list' % list_path)
    base_dir = os.path.dirname(os.path.abspath(list_path))
    files = {}
    for entry in pipelines:
        if not isinstance(entry, dict):
            raise ListError("%s: every pipeline is an object" % list_path)
        file_name = "%s.yaml" % entry.get("name")
        if file_name in files:
            raise ListError("pipeline %s is listed twice" % entry.get("name"))
        files[file_name] = render_pipeline(entry, settings, base_dir)
    if spec.get("podMonitor", False):
        files["podmonitor.yaml"] = render_pod_monitor(settings)
    header = "# Generated by deploy/kubernetes/render.py from %s; do not edit.\n" % os.path.basename(list_path)
    return {name: header + text for name, text in files.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("list", help="the pipelines list (JSON)")
    parser.add_argument("--out", required=True, help="the directory to write the manifests to")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when DIR is not what the list renders to")
    args = parser.parse_args(argv)
    try:
        files = render(args.list)
    except ListError as e:
        print("render.py: %s" % e, file=sys.stderr)
        return 2
    if args.check:
        stale = []
        for name, text in files.items():
            path = os.path.join(args.out, name)
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name + " differs")
            except OSError:
                stale.append(name + " is missing")
        if os.path.isdir(args.out):
            for name in sorted(os.listdir(args.out)):
                if name.endswith(".yaml") and name not in files:
                    stale.append(name + " is not in the list")
        if stale:
            print("render.py: %s is not what %s renders to: %s; run render.py again"
                  % (args.out, args.list, "; ".join(stale)), file=sys.stderr)
            return 1
        return 0
    os.makedirs(args.out, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(text)
    print("wrote %d files to %s" % (len(files), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
