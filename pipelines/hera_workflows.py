"""The Argo WorkflowTemplates (built with Hera) that chain the same steps as the KFP pipelines."""

from hera.workflows import DAG, Parameter, Task, WorkflowTemplate
from hera.workflows.models import (
    PersistentVolumeClaimVolumeSource,
    SecretVolumeSource,
    Volume,
)

from components.steps.analyze.hera_template import analyze
from components.steps.benchmark.hera_template import benchmark, benchmark_pair
from components.steps.cluster import (
    MODELS_CLAIM,
    MODELS_VOLUME,
    STEPS_SERVICE_ACCOUNT,
    STORAGE_SECRET,
    STORAGE_SECRET_VOLUME,
)
from components.steps.deploy.hera_template import deploy
from components.steps.gate.hera_template import gate
from components.steps.progressive.hera_template import progressive_rollout
from components.steps.rollout.hera_template import finish_rollout, promote, roll_back_on_failure, rollback
from components.steps.train.hera_template import train
from components.steps.upload.hera_template import upload

RUN_OWNER = "{{workflow.uid}}"  # the canary belongs to this workflow: another run's exit handler leaves it

def storage_volumes(claim: str = MODELS_CLAIM, secret: str = STORAGE_SECRET) -> list[Volume]:
    """The models claim and the (optional) storage Secret; either name may be a workflow parameter."""
    return [Volume(name=MODELS_VOLUME, persistent_volume_claim=PersistentVolumeClaimVolumeSource(claim_name=claim)),
            Volume(name=STORAGE_SECRET_VOLUME, secret=SecretVolumeSource(secret_name=secret, optional=True))]


def train_upload_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """train → upload, as a WorkflowTemplate to `argo template create` and `argo submit --from`."""
    with WorkflowTemplate(
        name="meshserve-train-upload",
        namespace=namespace,
        entrypoint="train-upload",
        volumes=storage_volumes(),
        arguments=[Parameter(name="dataset", value="digits"), Parameter(name="framework", value="sklearn"),
                   Parameter(name="storage-prefix", value=f"pvc://{MODELS_CLAIM}/meshserve")],
    ) as template:
        with DAG(name="train-upload"):
            trained = train(arguments={"framework": "{{workflow.parameters.framework}}",
                                       "dataset": "{{workflow.parameters.dataset}}"})
            published = upload(arguments=[trained.get_artifact("model").with_name("model"),
                                          Parameter(name="to", value="{{workflow.parameters.storage-prefix}}")])
            _in_order(trained, published)
    return template



def benchmark_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """The benchmark step on its own: `argo submit --from workflowtemplate/meshserve-benchmark -p url=...`."""
    with WorkflowTemplate(
        name="meshserve-benchmark",
        namespace=namespace,
        entrypoint="measure",
        arguments=[Parameter(name="url"), Parameter(name="protocol", value="kserve-v1"),
                   Parameter(name="model", value=""), Parameter(name="qps", value="100"),
                   Parameter(name="duration-s", value="60"), Parameter(name="sample", value="")],
    ) as template:
        with DAG(name="measure"):
            benchmark(arguments={"url": "{{workflow.parameters.url}}",
                                 "protocol": "{{workflow.parameters.protocol}}",
                                 "model": "{{workflow.parameters.model}}", "qps": "{{workflow.parameters.qps}}",
                                 "duration_s": "{{workflow.parameters.duration-s}}",
                                 "sample": "{{workflow.parameters.sample}}"})
    return template


def gate_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """Benchmark the candidate and the baseline side by side (one pod, the same moments), gate, and branch.

    The two follow-up tasks only report here; the deploy issue's promote and rollback steps take
    their place. `when` tests the gate's `decision` output parameter, as a pipeline would.
    """
    from hera.workflows import Container

    load = {"protocol": "{{workflow.parameters.protocol}}", "model": "{{workflow.parameters.model}}",
            "qps": "{{workflow.parameters.qps}}", "duration_s": "{{workflow.parameters.duration-s}}",
            "sample": "{{workflow.parameters.sample}}"}
    with WorkflowTemplate(
        name="meshserve-gate",
        namespace=namespace,
        entrypoint="measure-and-decide",
        arguments=[Parameter(name="candidate-url"), Parameter(name="baseline-url"),
                   Parameter(name="protocol", value="kserve-v1"), Parameter(name="model", value=""),
                   Parameter(name="qps", value="100"), Parameter(name="duration-s", value="60"),
                   Parameter(name="sample", value="")],
    ) as template:
        announce = Container(name="announce", image="busybox:1.36", command=["echo"],
                             args=["{{inputs.parameters.decision}}"], inputs=[Parameter(name="decision")])
        with DAG(name="measure-and-decide"):
            measured = benchmark_pair(arguments={"candidate_url": "{{workflow.parameters.candidate-url}}",
                                                 "baseline_url": "{{workflow.parameters.baseline-url}}", **load})
            decided = gate(arguments=[measured.get_artifact("candidate-result"),
                                      measured.get_artifact("baseline-result")])
            decision = "{{tasks.gate.outputs.parameters.decision}}"
            promoted = announce(name="promoted", arguments={"decision": decision},
                                when=f"{decision} == PROMOTE")
            rolled_back = announce(name="not-promoted", arguments={"decision": decision},
                                   when=f"{decision} != PROMOTE")
            _in_order(measured, decided, [promoted, rolled_back])
    return template


def _parameters(**defaults) -> list[Parameter]:
    """Workflow parameters named like the KFP pipeline's inputs, with dashes (values are Argo's strings)."""
    return [Parameter(name=name.replace("_", "-"), value=value) for name, value in defaults.items()]


def _workflow(name: str) -> str:
    return f"{{{{workflow.parameters.{name.replace('_', '-')}}}}}"


TRAIN_TO_SERVE_PARAMETERS = {
    "name": "digits", "dataset": "digits", "framework": "sklearn", "algorithm": "", "seed": "0",
    "storage_prefix": f"pvc://{MODELS_CLAIM}/meshserve", "models_claim": MODELS_CLAIM,
    "storage_secret": STORAGE_SECRET, "platform": "kubernetes", "namespace": "default", "runtime": "kserve-raw",
    "router": "istio", "autoscaling": "none", "canary_percent": "0", "min_replicas": "1", "max_replicas": "1",
    "scale_target": "0", "scale_metric": "", "scale_target_source": "", "metric_selector": "{}", "cpu": "",
    "memory": "", "gpus": "0",
    "node_selector": "{}", "tolerations": "[]", "service_account": "", "storage_options": "{}",
    "runtime_options": "{}", "router_options": "{}", "protocol": "", "qps": "500", "budget_s": "120", "policy": "{}",
    "rollout_policy": '{"guard": {"address": "http://prometheus.istio-system:9090"}}',  # Istio's sample Prometheus
}
_DEPLOY_INPUTS = ("canary_percent", "platform", "namespace", "runtime", "router", "autoscaling", "min_replicas",
                  "max_replicas", "scale_target", "scale_metric", "scale_target_source", "metric_selector", "cpu",
                  "memory", "gpus",
                  "node_selector", "tolerations", "service_account", "storage_secret", "storage_options",
                  "runtime_options", "router_options")


def train_to_serve_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """train → upload → deploy → progressive rollout (traffic steps under the live guard, analysed side by side
    with a fresh copy of the primary at the first step) → promoted or rolled back.

    The same DAG and parameters as the KFP pipeline. The exit handler rolls back the candidate a failed
    run left half-deployed. The run's ServiceAccount is manifests/rbac's.
    """
    from hera.workflows import DAG

    ref = {name: _workflow(name) for name in TRAIN_TO_SERVE_PARAMETERS}
    with WorkflowTemplate(
        name="meshserve-train-to-serve", namespace=namespace, entrypoint="train-to-serve",
        service_account_name=STEPS_SERVICE_ACCOUNT, on_exit="exit-handler",
        volumes=storage_volumes(ref["models_claim"], ref["storage_secret"]),
        arguments=_parameters(**TRAIN_TO_SERVE_PARAMETERS),
    ) as template:
        with DAG(name="exit-handler"):
            roll_back_on_failure(name="roll-back-on-failure", when="{{workflow.status}} != Succeeded",
                                 arguments={"name": ref["name"], "workflow_status": "{{workflow.status}}",
                                            "platform": ref["platform"], "namespace": ref["namespace"],
                                            "owner": RUN_OWNER})
        with DAG(name="train-to-serve"):
            trained = train(arguments={"framework": ref["framework"], "dataset": ref["dataset"],
                                       "algorithm": ref["algorithm"], "seed": ref["seed"]})
            published = upload(arguments=[trained.get_artifact("model").with_name("model"),
                                          Parameter(name="to", value=ref["storage_prefix"])])
            deployed = deploy(arguments={"name": ref["name"], "storage_uri": published.get_parameter("storage-uri"),
                                         "model_format": ref["framework"], "owner": RUN_OWNER,
                                         **{key: ref[key] for key in _DEPLOY_INPUTS}})
            rolled = progressive_rollout(name="progressive-rollout", arguments=[
                Parameter(name="name", value=ref["name"]),
                trained.get_artifact("model").with_name("candidate-manifest"),
                deployed.get_artifact("baseline-manifest").with_name("baseline-manifest"),
                Parameter(name="platform", value=ref["platform"]), Parameter(name="namespace", value=ref["namespace"]),
                Parameter(name="protocol", value=ref["protocol"]), Parameter(name="sample", value=ref["dataset"]),
                Parameter(name="qps", value=ref["qps"]), Parameter(name="budget_s", value=ref["budget_s"]),
                Parameter(name="policy", value=ref["policy"]), Parameter(name="rollout_policy",
                                                                         value=ref["rollout_policy"]),
                Parameter(name="owner", value=RUN_OWNER)])
            _in_order(trained, published, deployed, rolled)
    return template


def analyze_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """A deployed canary judged once, without traffic steps: analyze (side by side with a fresh copy of the
    primary), then promote, roll back or hold as the verdict says (`argo submit --from
    workflowtemplate/meshserve-analyze -p name=N`)."""
    from hera.workflows import DAG

    defaults = {"name": "", "platform": "kubernetes", "namespace": "default", "protocol": "", "sample": "",
                "qps": "500", "budget_s": "120", "policy": "{}"}
    ref = {name: _workflow(name) for name in defaults}
    with WorkflowTemplate(
        name="meshserve-analyze", namespace=namespace, entrypoint="analyze-and-finish",
        service_account_name=STEPS_SERVICE_ACCOUNT, arguments=_parameters(**defaults),
    ) as template:
        with DAG(name="analyze-and-finish"):
            analysed = analyze(name="analyze", arguments={
                **{key: ref[key] for key in ("name", "platform", "namespace", "protocol", "sample", "qps", "budget_s",
                                             "policy")}, "owner": ""})
            finished = finish_rollout(name="finish-rollout", arguments={
                "name": ref["name"], "platform": ref["platform"], "namespace": ref["namespace"],
                "action": analysed.get_parameter("action"), "owner": ""})
            _in_order(analysed, finished)
    return template


def rollout_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """Finish a rollout by hand: `argo submit --from workflowtemplate/meshserve-rollout -p name=N -p action=...`."""
    from hera.workflows import DAG

    ref = {name: _workflow(name) for name in ("name", "action", "platform", "namespace")}
    with WorkflowTemplate(
        name="meshserve-rollout", namespace=namespace, entrypoint="rollout", service_account_name=STEPS_SERVICE_ACCOUNT,
        arguments=_parameters(name="", action="promote", platform="kubernetes", namespace="default"),
    ) as template:
        with DAG(name="rollout"):
            target = {"name": ref["name"], "platform": ref["platform"], "namespace": ref["namespace"]}
            promote(when=f"{ref['action']} == promote", arguments=target)
            rollback(when=f"{ref['action']} == rollback", arguments=target)
    return template


def _in_order(*nodes: object) -> None:
    """Each node (a task, or a list of tasks run side by side) runs after the one before it. Template calls
    inside a DAG make Tasks; hera types the call as Step | Task, so each is checked here."""
    stages = [[_task(node) for node in (entry if isinstance(entry, list) else [entry])] for entry in nodes]
    for before, after in zip(stages, stages[1:], strict=False):
        for task in before:
            task >> (after if len(after) > 1 else after[0])


def _task(node: object) -> Task:
    if not isinstance(node, Task):
        raise TypeError(f"a DAG's template call made a {type(node).__name__}, not a Task")
    return node
