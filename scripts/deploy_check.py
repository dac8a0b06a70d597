"""The Python half of scripts/deploy-check (run in its virtual environment).

Renders the Helm chart with the Helm library (helm-python-sdk, no helm binary), lints it,
validates every rendered manifest against Kubernetes' schemas (kubernetes-validate, strict), and
checks what a schema cannot: that every HARMONY_* variable the chart, docker-compose.yml and the
Dockerfile set names a real setting of config/harmony.toml with a value of its type, that each
process gets roles, services and a JWT key it can start with, and that the pieces refer to each
other (Ingress to Services, HPAs and PDBs to Deployments, compose's depends_on and volumes).
Exits non-zero on the first file with a problem, after listing that file's problems.
"""

from __future__ import annotations

import base64
import re
import sys
import tomllib
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy/helm/harmony"
KUBERNETES = "1.37.0"
ROLES = {"api", "gateway", "fanout", "sink", "projector", "relay"}
CLUSTER_TRIO = ("cluster.postgres_url", "cluster.brokers", "cluster.redis_url")


def load_settings() -> dict[str, object]:
    """Every setting as "section.key" -> its default, from the defaults file the binary embeds."""
    with open(ROOT / "config/harmony.toml", "rb") as f:
        table = tomllib.load(f)
    return {f"{s}.{k}": v for s, keys in table.items() for k, v in keys.items()}


SETTINGS = load_settings()


def setting_of(name: str) -> str | None:
    """The setting an environment variable sets, as the binary maps it (config.rs), or None."""
    if name == "HARMONY_LISTEN":
        return "server.listen"
    if name == "HARMONY_DATA_DIR":
        return "server.data_dir"
    parts = name.removeprefix("HARMONY_").lower().split("__")
    if len(parts) != 2:
        return None
    key = ".".join(parts)
    return key if key in SETTINGS else None


def env_value(raw: str) -> object:
    """A variable's value as the binary reads it: an integer, a float, a boolean, else text."""
    for parse in (int, float):
        try:
            return parse(raw)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw, raw)


def check_env(env: dict[str, str], where: str) -> tuple[list[str], dict[str, object]]:
    """Problems with one process's HARMONY_* variables, and its effective settings."""
    problems: list[str] = []
    effective = dict(SETTINGS)
    for name, raw in sorted(env.items()):
        if not name.startswith("HARMONY_"):
            continue
        if name == "HARMONY_CONFIG":
            problems.append(f"{where}: HARMONY_CONFIG names a file the image does not have")
            continue
        key = setting_of(name)
        if key is None:
            problems.append(f"{where}: {name} is no setting (config/harmony.toml); the binary refuses it")
            continue
        value, default = env_value(str(raw)), SETTINGS[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = True
            value = str(raw)
        if not ok:
            problems.append(f"{where}: {name}={raw!r} is not a {type(default).__name__}")
        effective[key] = value
    roles = str(effective["server.roles"])
    names = {r.strip() for r in roles.split(",") if r.strip()}
    if roles.strip() != "all" and (not names or not names <= ROLES):
        problems.append(f"{where}: server.roles {roles!r} is not 'all' or a list of {sorted(ROLES)}")
    trio = [bool(effective[k]) for k in CLUSTER_TRIO]
    if any(trio) and not all(trio):
        problems.append(f"{where}: {', '.join(CLUSTER_TRIO)} are set together or not at all")
    if roles.strip() != "all" and not all(trio):
        problems.append(f"{where}: roles {roles!r} need the cluster settings")
    grace, drain = effective["server.shutdown_grace_secs"], effective["gateway.drain_secs"]
    if isinstance(grace, int) and isinstance(drain, int) and 0 < drain and drain >= grace:
        problems.append(f"{where}: gateway.drain_secs ({drain}) must be below server.shutdown_grace_secs ({grace})")
    rf, isr = effective["cluster.replication_factor"], effective["cluster.min_insync_replicas"]
    if isinstance(rf, int) and isinstance(isr, int) and not 1 <= isr <= rf:
        problems.append(f"{where}: cluster.min_insync_replicas ({isr}) must be 1 to replication_factor ({rf})")
    listen = str(effective["server.listen"])
    if not listen.startswith("0.0.0.0:") and not listen.startswith("[::]:"):
        problems.append(f"{where}: server.listen {listen!r} is not reachable from outside the container")
    return problems, effective


def roles_of(effective: dict[str, object]) -> set[str]:
    roles = str(effective["server.roles"]).strip()
    return set(ROLES) if roles == "all" else {r.strip() for r in roles.split(",") if r.strip()}


def report(title: str, problems: list[str]) -> None:
    if problems:
        print(f"FAIL {title}")
        for p in problems:
            print(f"  - {p}")
        sys.exit(1)
    print(f"ok   {title}")


# ---- the Helm chart ----


def render(values: dict | None) -> list[dict]:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name="harmony", namespace="chat", is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__file__"] = path
                docs.append(doc)
    return docs


def validate_schemas(docs: list[dict]) -> list[str]:
    problems = []
    for doc in docs:
        body = {k: v for k, v in doc.items() if k != "__file__"}
        what = f"{doc['__file__']}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(body, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"{what}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{what}: no Kubernetes {KUBERNETES} schema for {body.get('apiVersion')}")
    return problems


def check_chart_semantics(docs: list[dict], values: dict) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})
    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})
    covered: set[str] = set()
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        where = f"Deployment {name}"
        if pod.get("enableServiceLinks") is not False:
            problems.append(f"{where}: enableServiceLinks must be false (service links inject HARMONY_* variables)")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"{where}: pods must run as non-root")
        (container,) = pod["containers"]
        env: dict[str, str] = {}
        secret_keys_known = True
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(configmaps[source["configMapRef"]["name"]]["data"])
            elif "secretRef" in source:
                secret = secrets.get(source["secretRef"]["name"])
                if secret is None:
                    # existingSecret: the operator's; assume the keys values.yaml documents.
                    secret_keys_known = False
                    env["HARMONY_AUTH__JWT_SECRET"] = "set"
                    env.update({f"HARMONY_{k.upper().replace('.', '__')}": "set" for k in CLUSTER_TRIO})
                else:
                    env.update({k: "set" for k in secret["data"]})
        for item in container.get("env", []):
            env[item["name"]] = item["value"]
        env_problems, effective = check_env(env, where)
        problems += env_problems
        covered |= roles_of(effective)
        if secret_keys_known and "HARMONY_AUTH__JWT_SECRET" not in env:
            problems.append(f"{where}: no JWT key: every node of a cluster needs the same one")
        probes = {
            kind: container.get(kind, {}).get("httpGet", {}).get("path")
            for kind in ("readinessProbe", "livenessProbe")
        }
        if probes != {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}:
            problems.append(f"{where}: probes must be readiness /readyz and liveness /healthz, not {probes}")
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(resources.get(part, {})):
                problems.append(f"{where}: resources.{part} needs cpu and memory")
        security = container.get("securityContext", {})
        if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: needs readOnlyRootFilesystem and no privilege escalation")
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        needed = sleep + 3 * int(effective["server.shutdown_grace_secs"])
        if pod.get("terminationGracePeriodSeconds", 30) < needed:
            problems.append(
                f"{where}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} "
                f"< preStop {sleep} + 3 x shutdown_grace_secs = {needed}"
            )
    missing = ROLES - covered
    if missing:
        problems.append(f"no Deployment runs the roles {sorted(missing)}")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        if hpa["spec"]["scaleTargetRef"]["name"] not in deployments:
            problems.append(f"HPA {name} scales a Deployment the chart does not make")
    selectors = [d["spec"]["selector"]["matchLabels"] for d in deployments.values()]
    for name, kind in [(n, "PodDisruptionBudget") for n in by_kind.get("PodDisruptionBudget", {})] + [
        (n, "Service") for n in services
    ]:
        doc = by_kind[kind][name]
        sel = doc["spec"]["selector"]
        sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
        if sel not in selectors:
            problems.append(f"{kind} {name} selects no Deployment's pods")
    for name, ingress in by_kind.get("Ingress", {}).items():
        routes = {
            p["path"]: p["backend"]["service"]["name"]
            for rule in ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
        }
        for path, service in routes.items():
            if service not in services:
                problems.append(f"Ingress {name}: {path} goes to a Service the chart does not make")
        ws = services.get(routes.get("/api/v1/ws", ""), {})
        if ws.get("spec", {}).get("selector", {}).get("app.kubernetes.io/component") != "gateway":
            problems.append(f"Ingress {name}: /api/v1/ws must go to the gateway pods")
    jwt = values.get("auth", {}).get("jwtSecret") if values else None
    if jwt:
        try:
            if len(base64.b64decode(jwt, validate=True)) < 32:
                problems.append("auth.jwtSecret must decode to at least 32 bytes")
        except ValueError:
            problems.append("auth.jwtSecret is not base64")
    return problems


def check_chart() -> None:
    with helm.Chart.load(CHART) as chart:
        print(f"     Helm SDK {helm.helm_sdk_version()}, chart {chart.name} {chart.version}")
    for label, values_file in (("default values", None), ("values-production.yaml", CHART / "values-production.yaml")):
        values = yaml.safe_load(values_file.read_text()) if values_file else None
        lint = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES}")
        lint_problems = [m["error"] for m in lint["messages"] if m["severity"] >= 2] + lint["errors"]
        report(f"helm lint --strict ({label})", lint_problems)
        try:
            docs = render(values)
        except helm.HelmError as e:
            report(f"helm render ({label})", [str(e)])
        kinds = sorted({d["kind"] for d in docs})
        report(
            f"helm render ({label}): {len(docs)} manifests valid for Kubernetes {KUBERNETES} (strict): {', '.join(kinds)}",
            validate_schemas(docs),
        )
        report(f"chart semantics ({label}): settings, roles, probes, resources, grace, references", check_chart_semantics(docs, values or {}))
    # The chart refuses settings it sets itself, rather than rendering a variable twice.
    try:
        render({"config": {"server": {"roles": "all"}}})
        refused = False
    except helm.HelmError:
        refused = True
    report("chart refuses config it sets itself (config.server.roles)", [] if refused else ["it rendered"])


# ---- docker-compose.yml ----

INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with the defaults or a stand-in."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if op and "-" in op:
            return arg
        # A 32-byte stand-in in base64, so a JWT key checks like a real one.
        return "c3RhbmQtaW4tdmFsdWUtb2YtdGhpcnR5LXR3by1ieXRlcw==" if "SECRET" in name else "stand-in"

    return INTERPOLATION.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def check_compose() -> None:
    path = ROOT / "docker-compose.yml"
    compose = yaml.safe_load(interpolate(path.read_text()))
    problems: list[str] = []
    services: dict[str, dict] = compose.get("services", {})
    declared_volumes = set((compose.get("volumes") or {}).keys())
    covered: set[str] = set()
    harmony_nodes = 0
    brokers = 0
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        where = f"service {name}"
        if not image:
            problems.append(f"{where}: no image")
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if not tag or tag == "latest":
            problems.append(f"{where}: image {image!r} is not pinned to a version tag")
        for dep in svc.get("depends_on", {}):
            if dep not in services:
                problems.append(f"{where}: depends_on {dep!r}, which is no service")
        for volume in svc.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")) and source not in declared_volumes:
                problems.append(f"{where}: volume {source!r} is not declared under volumes:")
        is_harmony = image.startswith("harmony:")
        if is_harmony:
            harmony_nodes += 1
            if "build" not in svc:
                problems.append(f"{where}: a harmony service builds ./Dockerfile (build: .)")
            env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
            env_problems, effective = check_env(env, where)
            problems += env_problems
            covered |= roles_of(effective)
            if not all(effective[k] for k in CLUSTER_TRIO):
                problems.append(f"{where}: not pointed at PostgreSQL, the broker and Redis")
            for key, target in (("cluster.postgres_url", "postgres"), ("cluster.redis_url", "redis"), ("cluster.brokers", "redpanda")):
                host = re.sub(r"^\w+://([^@/]*@)?", "", str(effective[key])).split(":")[0].split("/")[0]
                if host not in services:
                    problems.append(f"{where}: {key} names host {host!r}, which is no service")
                elif host not in svc.get("depends_on", {}):
                    problems.append(f"{where}: does not wait for {host} (depends_on)")
            if int(effective["cluster.replication_factor"]) > 1 and brokers_in(services) < 2:
                problems.append(f"{where}: replication_factor {effective['cluster.replication_factor']} with one broker")
        else:
            if "healthcheck" not in svc:
                problems.append(f"{where}: no healthcheck (the harmony nodes wait for it)")
            if not svc.get("volumes"):
                problems.append(f"{where}: a stateful service keeps its data in a volume")
        if "redpanda" in image or "kafka" in image:
            brokers += 1
    postgres = services.get("postgres", {})
    if "wal_level=logical" not in " ".join(map(str, postgres.get("command", []))):
        problems.append("service postgres: the relay needs wal_level=logical")
    if brokers == 0:
        problems.append("no Kafka-API broker service")
    missing = ROLES - covered
    if missing:
        problems.append(f"no harmony service runs the roles {sorted(missing)}")
    report(
        f"docker-compose.yml: {len(services)} services ({harmony_nodes} harmony), images pinned, "
        "settings real, roles covered, healthchecks, volumes",
        problems,
    )


def brokers_in(services: dict[str, dict]) -> int:
    return sum(
        int((s.get("deploy") or {}).get("replicas", 1))
        for s in services.values()
        if "redpanda" in str(s.get("image", "")) or "kafka" in str(s.get("image", ""))
    )


# ---- the Dockerfile's settings ----


def check_dockerfile_env() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"(\w+)=(\S+)", line):
                env[name] = value
    problems, _ = check_env(env, "Dockerfile ENV")
    if env.get("HARMONY_DATA_DIR") != "/data" or 'VOLUME ["/data"]' not in text:
        problems.append("Dockerfile: HARMONY_DATA_DIR must be the /data volume")
    report(f"Dockerfile ENV: {', '.join(sorted(env))} are real settings", problems)


def main() -> None:
    check_dockerfile_env()
    check_chart()
    check_compose()


if __name__ == "__main__":
    main()
