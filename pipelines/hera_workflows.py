"""The Argo WorkflowTemplates (built with Hera) that chain the same steps as the KFP pipelines."""

from hera.workflows import DAG, Parameter, WorkflowTemplate
from hera.workflows.models import (
    PersistentVolumeClaimVolumeSource,
    SecretVolumeSource,
    Volume,
)

from components.steps.benchmark.hera_template import benchmark, benchmark_pair
from components.steps.cluster import (
    MODELS_CLAIM,
    MODELS_VOLUME,
    STORAGE_SECRET,
    STORAGE_SECRET_VOLUME,
)
from components.steps.gate.hera_template import gate
from components.steps.train.hera_template import train
from components.steps.upload.hera_template import upload

STORAGE_VOLUMES = [
    Volume(name=MODELS_VOLUME, persistent_volume_claim=PersistentVolumeClaimVolumeSource(claim_name=MODELS_CLAIM)),
    Volume(name=STORAGE_SECRET_VOLUME, secret=SecretVolumeSource(secret_name=STORAGE_SECRET, optional=True)),
]


def train_upload_template(namespace: str = "kubeflow") -> WorkflowTemplate:
    """train → upload, as a WorkflowTemplate to `argo template create` and `argo submit --from`."""
    with WorkflowTemplate(
        name="meshserve-train-upload",
        namespace=namespace,
        entrypoint="train-upload",
        volumes=STORAGE_VOLUMES,
        arguments=[Parameter(name="dataset", value="digits"), Parameter(name="framework", value="sklearn"),
                   Parameter(name="storage-prefix", value=f"pvc://{MODELS_CLAIM}/meshserve")],
    ) as template:
        with DAG(name="train-upload"):
            trained = train(arguments={"framework": "{{workflow.parameters.framework}}",
                                       "dataset": "{{workflow.parameters.dataset}}"})
            published = upload(arguments=[trained.get_artifact("model").with_name("model"),
                                          Parameter(name="to", value="{{workflow.parameters.storage-prefix}}")])
            trained >> published
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
            measured >> decided >> [promoted, rolled_back]
    return template
