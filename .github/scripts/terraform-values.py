#!/usr/bin/env python3
"""The terraform -> Helm hand-off: turns `terraform output -json` of terraform/ (one
environment) into a Helm values file for infra/helm/taskstream, so that nothing terraform
decides (workload identity ids, the Key Vault's generated name, the registry, the token
verification) is copied by hand into values files. helm-deploy.sh passes the result with
--values after values-<env>.yaml; scripts/lib/infra.sh tests it against a committed fixture and
renders the chart with what it writes.

    terraform -chdir=terraform output -json > outputs.json
    .github/scripts/terraform-values.py --strip-sensitive < outputs.json   # what to store in the
                                         # environment variable TERRAFORM_OUTPUTS (no secrets)
    .github/scripts/terraform-values.py --release taskstream --namespace taskstream \
        --public-url https://taskstream.example.com < outputs.json > handoff.values.json

The values file is JSON (which YAML, and so Helm, reads). Outputs marked sensitive are never
read or written. Exit status 2 with a message on stderr when an output is missing or malformed,
or when the release or namespace differ from the ones the federated credentials trust.
Python 3.8+, standard library only.
"""

import argparse
import json
import re
import sys
import urllib.parse

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Key Vault secret (terraform/main.tf local.app_secrets) -> key of the synced Secret, which the
# chart reads by secrets.keys.* (values.yaml).
SECRET_KEYS = {
    "database-url": "DATABASE_URL",
    "jwt-secret": "JWT_SECRET",
    "kafka-sasl-password": "KAFKA_SASL_PASSWORD",
}


class HandoffError(Exception):
    pass


def public_outputs(outputs):
    """The outputs without the sensitive ones, in `terraform output -json` form."""
    if not isinstance(outputs, dict):
        raise HandoffError("the input is not `terraform output -json` (a JSON object of outputs)")
    return {name: o for name, o in outputs.items() if isinstance(o, dict) and not o.get("sensitive")}


def value(outputs, name, pattern=None):
    entry = outputs.get(name)
    if entry is None:
        raise HandoffError(f"terraform output {name} is missing (apply terraform/ of this revision first)")
    got = entry.get("value")
    if got in (None, ""):
        raise HandoffError(f"terraform output {name} is empty")
    if pattern is not None and not (isinstance(got, str) and pattern.match(got)):
        raise HandoffError(f"terraform output {name} is malformed: {got!r}")
    return got


def helm_values(outputs, release, namespace, public_url):
    outputs = public_outputs(outputs)
    want_release = value(outputs, "app_release_name")
    want_namespace = value(outputs, "app_namespace")
    if (release, namespace) != (want_release, want_namespace):
        raise HandoffError(
            f"release {release!r} in namespace {namespace!r}, but the federated credentials trust "
            f"{want_release!r} in {want_namespace!r} (terraform variables app_release_name, app_namespace): "
            "the pods would not get Key Vault access")
    names = value(outputs, "key_vault_secret_names")
    unknown = sorted(set(names) - set(SECRET_KEYS))
    if unknown:
        raise HandoffError(f"Key Vault secrets without a Secret key here: {unknown} (extend SECRET_KEYS)")
    values = {
        "image": {"registry": value(outputs, "acr_login_server")},
        "workloadIdentity": {
            "enabled": True,
            "clientId": value(outputs, "app_identity_client_id", GUID),
            "tenantId": value(outputs, "tenant_id", GUID),
        },
        "keyVault": {
            "enabled": True,
            "name": value(outputs, "key_vault_name"),
            "objects": {name: SECRET_KEYS[name] for name in sorted(names)},
        },
    }
    jwt = outputs.get("jwt", {}).get("value")
    if jwt:
        values["config"] = {"jwt": {"jwksUrl": jwt["jwks_url"], "issuer": jwt["issuer"],
                                    "audience": jwt["audience"]}}
    if public_url:
        url = urllib.parse.urlsplit(public_url)
        if url.scheme != "https" or not url.hostname or url.path not in ("", "/"):
            raise HandoffError(f"--public-url must be https://HOST with no path, not {public_url!r}")
        values["ingress"] = {
            "hosts": [{"host": url.hostname, "paths": [{"path": "/", "pathType": "Prefix"}]}],
            # cert-manager (ingress.tlsIssuer) creates this Secret for the host.
            "tls": [{"secretName": f"{release}-tls", "hosts": [url.hostname]}],
        }
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="taskstream", help="Helm release name (default taskstream)")
    parser.add_argument("--namespace", default="taskstream", help="Kubernetes namespace (default taskstream)")
    parser.add_argument("--public-url", default="", help="https://HOST the Ingress serves (optional)")
    parser.add_argument("--strip-sensitive", action="store_true",
                        help="print the input without its sensitive outputs, and nothing else")
    parser.add_argument("input", nargs="?", default="-", help="`terraform output -json` file (default stdin)")
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.read() if args.input == "-" else open(args.input, encoding="utf-8").read()
        outputs = json.loads(text)
        if args.strip_sensitive:
            result = public_outputs(outputs)
        else:
            result = helm_values(outputs, args.release, args.namespace, args.public_url)
    except (HandoffError, ValueError, OSError) as e:
        print(f"terraform-values: {e}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
